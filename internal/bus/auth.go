package bus

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MQTTLogin is what an MQTT client presented in its CONNECT packet.
type MQTTLogin struct {
	Username, Password string
	ClientID           string
	// RemoteAddr is the client's IP address; for MQTT over WebSocket the
	// browser's, from the X-Forwarded-For header nagare's proxy sets.
	RemoteAddr string
	WebSocket  bool
}

// MQTTAccess is what an accepted MQTT login may do, as NATS subjects
// (MQTT topics are converted before they are checked: a/b → a.b, + → *,
// # → >). A wildcard subscription broader than every allowed subject is
// refused, so MQTT "#" or "+/…" filters cannot reach past these.
type MQTTAccess struct {
	Name      string   // the connection's user in NATS (device ID, user name)
	Publish   []string // subjects the client may publish on (wills included)
	Subscribe []string // subjects the client may subscribe to
}

// MQTTAuthFunc decides an MQTT login: an error refuses it (CONNACK
// "not authorized"). It runs on the connection's goroutine before any
// other packet is read.
type MQTTAuthFunc func(ctx context.Context, l MQTTLogin) (*MQTTAccess, error)

// SetMQTTAuth installs the function deciding MQTT logins. Until it is
// called every MQTT login is refused.
func (b *Bus) SetMQTTAuth(f MQTTAuthFunc) { b.mqttAuth.Store(&f) }

// clientAuth is the embedded server's CustomClientAuthentication: it runs
// for every client connection, NATS and MQTT (over TCP or WebSocket).
type clientAuth struct{ b *Bus }

func (a clientAuth) Check(c server.ClientAuthentication) bool { return a.b.checkClient(c) }

type connType int

const (
	connUnknown connType = iota
	connNATS             // NATS protocol over TCP or the in-process pipe
	connNATSWS           // NATS protocol over WebSocket
	connMQTT             // MQTT over TCP
	connMQTTWS           // MQTT over WebSocket
)

// classify tells the protocol of a client connection, its remote IP and,
// for MQTT, the client ID. nats-server exposes these only in the
// connection's description: "<addr> - cid:N" (NATS), "- wid:N" (NATS over
// WebSocket), "- mid:N" and "- mid_ws:N" (MQTT, followed by
// ` - "<client ID>"` once CONNECT is read); for WebSocket <addr> is
// "<X-Forwarded-For>/<addr>". TestClassify pins the format of the pinned
// server version.
func classify(c server.ClientAuthentication) (t connType, remote, clientID string) {
	desc := ""
	if s, ok := c.(fmt.Stringer); ok {
		desc = s.String()
	}
	addr, rest, ok := strings.Cut(desc, " - ")
	if !ok {
		return connUnknown, "", ""
	}
	tag, quoted, _ := strings.Cut(rest, " - ")
	switch {
	case strings.HasPrefix(tag, "cid:"):
		t = connNATS
	case strings.HasPrefix(tag, "wid:"):
		t = connNATSWS
	case strings.HasPrefix(tag, "mid:"):
		t = connMQTT
	case strings.HasPrefix(tag, "mid_ws:"):
		t = connMQTTWS
	default:
		return connUnknown, "", ""
	}
	if t == connMQTT || t == connMQTTWS {
		id, err := strconv.Unquote(quoted)
		if err != nil {
			return connUnknown, "", ""
		}
		clientID = id
	}
	if t == connNATSWS || t == connMQTTWS {
		if fwd, _, ok := strings.Cut(addr, "/"); ok {
			return t, strings.Trim(fwd, "[]"), clientID
		}
	}
	if ra := c.RemoteAddress(); ra != nil {
		addr = ra.String()
	}
	return t, hostOnly(addr), clientID
}

func tokenEqual(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// checkClient decides one connection:
//   - nagare's own in-process connection presents the internal token
//     (random per start, never shown) and has full access;
//   - other NATS-protocol clients come only through the nats-listen
//     port: with a nats-token they must present it, without one they
//     are let in as before (full access); NATS over the loopback
//     WebSocket port and other in-process connections are refused;
//   - MQTT clients (TCP, or WebSocket through /mqtt) are decided by the
//     MQTTAuthFunc and get its per-connection permissions.
func (b *Bus) checkClient(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	t, remote, clientID := classify(c)
	opts := c.GetOpts()
	switch t {
	case connNATS, connNATSWS:
		if tokenEqual(opts.Token, b.internalToken) {
			return true
		}
		if t == connNATSWS || !b.listens {
			return false
		}
		if ra := c.RemoteAddress(); ra == nil || ra.Network() != "tcp" {
			return false // in-process without the internal token
		}
		if b.natsToken != "" {
			if !tokenEqual(opts.Token, b.natsToken) {
				slog.Warn("NATS client refused: wrong or missing nats-token", "remote", remote)
				return false
			}
		}
		return true
	case connMQTT, connMQTTWS:
		f := b.mqttAuth.Load()
		if f == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		acc, err := (*f)(ctx, MQTTLogin{Username: opts.Username, Password: opts.Password,
			ClientID: clientID, RemoteAddr: remote, WebSocket: t == connMQTTWS})
		if err != nil || acc == nil {
			return false
		}
		c.RegisterUser(&server.User{Username: acc.Name, Permissions: permissions(acc)})
		return true
	}
	return false
}

// permissions turns an MQTTAccess into NATS permissions. An empty
// subscribe list must deny everything: NATS reads an empty allow list as
// "no restriction".
func permissions(a *MQTTAccess) *server.Permissions {
	p := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: append([]string{}, a.Publish...)},
		Subscribe: &server.SubjectPermission{Allow: append([]string(nil), a.Subscribe...)},
	}
	if len(a.Subscribe) == 0 {
		p.Subscribe = &server.SubjectPermission{Deny: []string{">"}}
	}
	return p
}

// hostOnly strips a port from addr when there is one.
func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
