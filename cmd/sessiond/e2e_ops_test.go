package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// adminRE finds the admin listener's address in sessiond's log.
var adminRE = regexp.MustCompile(`msg="admin listening" addr=(127\.0\.0\.1:[0-9]+)`)

// await polls cond every 20 ms until it holds or timeout passes, and
// reports whether it held.
func await(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fetch does a request and returns the status, the header and the body.
func fetch(t *testing.T, client *http.Client, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestEndToEndOperations checks what an operator relies on: -version, the
// environment, the probes, the admin listener, the methods of the routes,
// and the drain before the stop.
func TestEndToEndOperations(t *testing.T) {
	bin := sharedSessiond(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "sessiond ") || !strings.HasSuffix(string(out), runtime.Version()+"\n") {
		t.Errorf("-version: %v, %q", err, out)
	}

	const drain = 2 * time.Second
	p := startSessiondWith(t, bin, startOptions{env: []string{
		"SESSIOND_IDLE_TIMEOUT=42s",
		"SESSIOND_MAX_SESSIONS=100", // the flag wins
		"SESSIOND_DRAIN_DELAY=" + drain.String(),
	}}, "-max-sessions", "1", "-admin-addr", "127.0.0.1:0")
	var admin string
	if !await(10*time.Second, func() bool {
		m := adminRE.FindStringSubmatch(p.log())
		if m != nil {
			admin = "http://" + m[1]
		}
		return m != nil
	}) {
		t.Fatalf("no admin listener in the log:\n%s", p.log())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	v := p.newVisitor()
	if body, _, _ := v.get("/logme"); !strings.Contains(body, "expires 42s after") {
		t.Errorf("SESSIOND_IDLE_TIMEOUT=42s: /logme says %q", body)
	}
	if code, _, _ := fetch(t, client, "GET", p.base+"/logme"); code != http.StatusServiceUnavailable {
		t.Errorf("second visitor with -max-sessions 1 (SESSIOND_MAX_SESSIONS=100): %d", code)
	}

	for _, c := range []struct {
		method, url string
		code        int
		has         string
	}{
		{"GET", p.base + "/healthz", 200, "ok"},
		{"GET", p.base + "/readyz", 200, "ready"},
		{"GET", p.base + "/metrics", 404, ""},
		{"GET", p.base + "/debug/pprof/", 404, ""},
		{"GET", p.base + "/logout", 405, ""},
		{"GET", admin + "/metrics", 200, "sessionwheel_sessions_active 1\n"},
		{"GET", admin + "/debug/pprof/", 200, "goroutine"},
		{"GET", admin + "/debug/pprof/cmdline", 200, "-admin-addr"},
		{"GET", admin + "/healthz", 200, "ok"},
		{"GET", admin + "/readyz", 200, "ready"},
		{"GET", admin + "/logme", 404, ""},
	} {
		code, h, body := fetch(t, client, c.method, c.url)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s %s: %d %.80q, want %d with %q", c.method, c.url, code, body, c.code, c.has)
		}
		if code == 405 && h.Get("Allow") != "POST" {
			t.Errorf("%s %s: 405 with Allow %q", c.method, c.url, h.Get("Allow"))
		}
	}

	// SIGTERM: /readyz fails at once, while the server goes on serving
	// for the drain delay; then it stops.
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !await(drain/2, func() bool {
		code, _, _ := fetch(t, client, "GET", p.base+"/readyz")
		return code == http.StatusServiceUnavailable
	}) {
		t.Fatalf("/readyz still ready %v after SIGTERM", drain/2)
	}
	if code, _, _ := fetch(t, client, "GET", p.base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d", code)
	}
	if body, _, _ := v.get("/logme"); !strings.Contains(body, "is active") {
		t.Errorf("/logme while draining: %q", body)
	}
	select {
	case <-p.exited:
	case <-time.After(drain + 10*time.Second):
		t.Fatal("no exit after the drain delay")
	}
	if took := time.Since(start); p.cmd.ProcessState.ExitCode() != 0 || took < drain {
		t.Errorf("exit status %d %v after SIGTERM, want 0 after the drain delay %v", p.cmd.ProcessState.ExitCode(), took, drain)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their files and a pool that trusts it.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sessiond test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, pool
}

// TestEndToEndTLS checks that the session cookie is Secure, with the
// __Host- prefix, over TLS, and behind a TLS proxy on plain HTTP.
func TestEndToEndTLS(t *testing.T) {
	bin := sharedSessiond(t)
	certFile, keyFile, pool := writeCert(t, t.TempDir())

	secureCookie := func(t *testing.T, h http.Header) {
		t.Helper()
		c := h.Get("Set-Cookie")
		if !strings.HasPrefix(c, "__Host-session=") || !strings.Contains(c, "; Secure") || !strings.Contains(c, "; HttpOnly") {
			t.Errorf("Set-Cookie %q, want a Secure, HttpOnly __Host-session", c)
		}
	}

	t.Run("tls", func(t *testing.T) {
		p := startSessiondWith(t, bin, startOptions{scheme: "https"}, "-tls-cert", certFile, "-tls-key", keyFile)
		v := p.newVisitor()
		v.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		defer v.client.CloseIdleConnections()
		code, h, body := fetch(t, v.client, "GET", p.base+"/logme")
		if code != http.StatusOK {
			t.Fatalf("GET /logme over TLS: %d %q", code, body)
		}
		secureCookie(t, h)
		id, _, _ := v.logme() // the jar sends the cookie back over TLS
		if !strings.Contains(body, id) {
			t.Errorf("session changed over TLS: %q, then %s", body, id)
		}
	})

	t.Run("bad certificate", func(t *testing.T) {
		cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-tls-cert", keyFile, "-tls-key", keyFile)
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitError || !strings.Contains(string(out), "cannot load the TLS certificate") {
			t.Errorf("key as certificate: %v, %q", err, out)
		}
	})

	t.Run("behind proxy", func(t *testing.T) {
		p := startSessiond(t, bin, "-behind-tls-proxy")
		client := &http.Client{Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		code, h, _ := fetch(t, client, "GET", p.base+"/logme")
		if code != http.StatusOK {
			t.Fatalf("GET /logme: %d", code)
		}
		secureCookie(t, h)
	})
}
