package mqtt

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/nagare-iot/nagare/internal/api"
)

// Path is where MQTT over WebSocket is served on nagare's HTTP listener
// (Paho JS and mqtt.js use it when no path is given).
const Path = "/mqtt"

// WebSocketProxy serves GET /mqtt on nagare's HTTP port by passing the
// WebSocket upgrade (subprotocol "mqtt") to the embedded NATS server's
// loopback WebSocket listener at target (host:port). Cross-site pages are
// kept out: a request with an Origin header must come from the request's
// own host or from one of origins (scheme://host[:port], e.g. the public
// URL when nagare sits behind a proxy that rewrites Host). Clients that
// send no Origin (devices, scripts) are let through: they still have to
// log in over MQTT.
func WebSocketProxy(target string, origins []string) http.Handler {
	allowed := map[string]bool{}
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			allowed[strings.ToLower(u.Scheme+"://"+u.Host)] = true
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: target})
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = Path, "", ""
			// Rewrite drops the inbound X-Forwarded-* headers; this sets
			// the client's own address, which NATS reports for the
			// connection (and permission conditions on ipAddress see).
			pr.SetXForwarded()
			// Nothing of nagare's session belongs to NATS.
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Authorization")
		},
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConns:          1,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			slog.Warn("MQTT over WebSocket: upstream failed", "remote", r.RemoteAddr, "err", err)
			api.WriteError(w, r, api.Errorf(http.StatusBadGateway, api.CodeUnavailable, "the MQTT WebSocket endpoint is not available"))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !headerHas(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Upgrade", "websocket")
			api.WriteError(w, r, api.Errorf(http.StatusUpgradeRequired, api.CodeBadRequest,
				"%s is MQTT over WebSocket: open it with a WebSocket (subprotocol mqtt) MQTT 3.1.1 client such as Paho or mqtt.js", Path))
			return
		}
		if p := r.Header.Values("Sec-WebSocket-Protocol"); len(p) > 0 && !headerHas(r.Header, "Sec-WebSocket-Protocol", "mqtt") {
			api.WriteError(w, r, api.BadRequest("the WebSocket subprotocol must be mqtt, not %q", strings.Join(p, ", ")))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r, allowed) {
			slog.Info("MQTT over WebSocket: cross-site request refused", "origin", o, "remote", r.RemoteAddr)
			api.WriteError(w, r, api.Forbidden("origin %s may not open %s; use a page served by this server", o, Path))
			return
		}
		rp.ServeHTTP(w, r)
	})
}

func sameOrigin(origin string, r *http.Request, allowed map[string]bool) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return allowed[strings.ToLower(u.Scheme+"://"+u.Host)]
}

// headerHas reports whether a comma-separated header has token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
