package httpadapter

import (
	"net/textproto"
	"strings"
)

// nextCookie finds the first cookie called name in line, the value of a
// Cookie header, and returns its value, without surrounding double quotes,
// and the rest of the line after it. It splits the line as net/http does
// (Request.Cookie), so that both see the same cookies, but it does not
// allocate and does not check the value: the caller parses it as an ID,
// which accepts less than any cookie value.
func nextCookie(line, name string) (value, rest string, ok bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		k, v, _ := strings.Cut(textproto.TrimString(part), "=")
		if textproto.TrimString(k) != name {
			continue
		}
		if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, line, true
	}
	return "", "", false
}
