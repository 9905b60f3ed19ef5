package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionwheel/sessionwheel/metrics"
	"github.com/sessionwheel/sessionwheel/sessions"
)

// Register a manager's collector on a registry of your own and serve it
// with promhttp; a server would mount the handler at /metrics.
func ExampleNew() {
	m, err := sessions.New(sessions.Config{})
	if err != nil {
		panic(err)
	}
	defer m.Close(context.Background())

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(m, prometheus.Labels{"manager": "web"}))
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	// http.Handle("/metrics", handler)

	for range 3 {
		m.Create()
	}
	s, _ := m.Create()
	s.Expire() // a logout

	// What a scrape sees, in part.
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "sessionwheel_sessions_") {
			fmt.Println(line)
		}
	}
	// Output:
	// sessionwheel_sessions_active{manager="web"} 3
	// sessionwheel_sessions_created_total{manager="web"} 4
	// sessionwheel_sessions_discarded_total{manager="web"} 0
	// sessionwheel_sessions_ended_total{manager="web",reason="absolute"} 0
	// sessionwheel_sessions_ended_total{manager="web",reason="evicted"} 0
	// sessionwheel_sessions_ended_total{manager="web",reason="explicit"} 1
	// sessionwheel_sessions_ended_total{manager="web",reason="idle"} 0
	// sessionwheel_sessions_ended_total{manager="web",reason="shutdown"} 0
	// sessionwheel_sessions_restored_total{manager="web"} 0
}
