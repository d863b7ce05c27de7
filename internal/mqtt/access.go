package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/nagare-iot/nagare/internal/api"
	"github.com/nagare-iot/nagare/internal/bus"
	"github.com/nagare-iot/nagare/internal/inventory"
)

// DeviceAuthenticator checks a device secret (inventory.Service).
type DeviceAuthenticator interface {
	AuthenticateDevice(ctx context.Context, deviceID, secret string) (*inventory.Device, error)
}

// deviceIDRE bounds what a device login name may be: it becomes one token
// of the device's NATS subjects, so '.', '*', '>' and spaces must never
// get there.
var deviceIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// DeviceAccess is what a device may do over MQTT: its own device topics
// (devices/<id>, devices/<id>/…, with devices/<id>/data stored in Harvest
// Data) and its own shadow: subscribe to $aws/things/<id>/shadow/#, and
// publish the shadow requests get, update and delete (classic and named).
// The shadow service's replies (accepted, rejected, delta, documents) are
// published by nagare, not by devices.
func DeviceAccess(id string) *bus.MQTTAccess {
	dev := "devices." + id
	shadow := "$aws.things." + id + ".shadow"
	return &bus.MQTTAccess{
		Name: id,
		Publish: []string{dev, dev + ".>",
			shadow + ".get", shadow + ".update", shadow + ".delete",
			shadow + ".name.*.get", shadow + ".name.*.update", shadow + ".name.*.delete"},
		Subscribe: []string{dev, dev + ".>", shadow, shadow + ".>"},
	}
}

// RootAccess is the operator's root account: everything under
// $aws/things/ and devices/ (publishing on devices/<id>/data stores an
// entry for that device, as the device itself would).
func RootAccess(name string) *bus.MQTTAccess {
	all := []string{"$aws.things", "$aws.things.>", "devices", "devices.>"}
	return &bus.MQTTAccess{Name: name, Publish: all, Subscribe: all}
}

// userGrant maps an API operation a SAM user may call to the NATS
// subjects it opens over MQTT. method is the HTTP method the operation
// has, for permission conditions that test httpMethod.
type userGrant struct {
	op, method     string
	pub, subscribe []string
}

const anyShadow = "$aws.things.*.shadow"

var userGrants = []userGrant{
	{op: "Shadow:getThingShadow", method: "GET",
		pub:       []string{anyShadow + ".get", anyShadow + ".name.*.get"},
		subscribe: []string{anyShadow, anyShadow + ".>"}},
	{op: "Shadow:updateThingShadow", method: "POST",
		pub: []string{anyShadow + ".update", anyShadow + ".name.*.update"}},
	{op: "Shadow:deleteThingShadow", method: "DELETE",
		pub: []string{anyShadow + ".delete", anyShadow + ".name.*.delete"}},
	{op: "Device:getDataFromDevice", method: "GET",
		subscribe: []string{"devices.*", "devices.*.>"}},
}

// UserGrants lists the operations that open MQTT subjects to SAM users,
// with the subjects (for docs and tests).
func UserGrants() []struct{ Op, Publish, Subscribe string } {
	var out []struct{ Op, Publish, Subscribe string }
	for _, g := range userGrants {
		out = append(out, struct{ Op, Publish, Subscribe string }{g.op, strings.Join(g.pub, " "), strings.Join(g.subscribe, " ")})
	}
	return out
}

// errRefused is every refusal's error; the reason is logged, not sent
// (MQTT 3.1.1 has only "not authorized" to answer with).
var errRefused = errors.New("not authorized")

// Login decides an MQTT CONNECT (bus.MQTTAuthFunc). A username starting
// with "api-" is an API key whose password is its token (POST /v1/auth);
// any other username is an Inventory device ID whose password is the
// device secret.
func (s *Service) Login(ctx context.Context, l bus.MQTTLogin) (*bus.MQTTAccess, error) {
	acc, who, err := s.login(ctx, l)
	via := "tcp"
	if l.WebSocket {
		via = "websocket"
	}
	if err != nil {
		s.m.logins.WithLabelValues("refused").Inc()
		slog.Info("MQTT login refused", "user", who, "remote", l.RemoteAddr, "via", via, "reason", err)
		return nil, errRefused
	}
	s.m.logins.WithLabelValues("accepted").Inc()
	slog.Debug("MQTT login", "user", who, "remote", l.RemoteAddr, "via", via)
	return acc, nil
}

func (s *Service) login(ctx context.Context, l bus.MQTTLogin) (*bus.MQTTAccess, string, error) {
	if l.Username == "" || l.Password == "" {
		return nil, "", errors.New("username and password are required")
	}
	if strings.HasPrefix(l.Username, "api-") {
		who := l.Username
		if len(who) > 12 {
			who = who[:12] + "…" // an API key is half a credential: log only its start
		}
		if strings.HasPrefix(l.ClientID, deviceClientPrefix) {
			return nil, who, fmt.Errorf("client IDs starting with %q are reserved for devices", deviceClientPrefix)
		}
		acc, err := s.userAccess(ctx, l)
		return acc, who, err
	}
	if !deviceIDRE.MatchString(l.Username) {
		return nil, "(invalid device ID)", errors.New("the username is neither an API key nor a device ID")
	}
	dev, err := s.devices.AuthenticateDevice(ctx, l.Username, l.Password)
	if err != nil {
		return nil, l.Username, reason(err)
	}
	if strings.HasPrefix(l.ClientID, deviceClientPrefix) && !deviceOwnsClientID(dev.DeviceID, l.ClientID) {
		return nil, l.Username, fmt.Errorf("client ID %q belongs to another device", l.ClientID)
	}
	return DeviceAccess(dev.DeviceID), l.Username, nil
}

// deviceClientPrefix starts every device ID, and so the client IDs
// reserved for devices. MQTT lets a new connection with a session's
// client ID take that session over (and disconnect its holder); a
// device's own client IDs (its ID, or its ID, "-", anything) can only be
// taken by that device.
const deviceClientPrefix = "d-"

func deviceOwnsClientID(deviceID, clientID string) bool {
	return clientID == deviceID || strings.HasPrefix(clientID, deviceID+"-")
}

func (s *Service) userAccess(ctx context.Context, l bus.MQTTLogin) (*bus.MQTTAccess, error) {
	p, err := s.users.Authenticate(ctx, l.Username, l.Password)
	if err != nil {
		return nil, reason(err)
	}
	if p.Root() {
		return RootAccess("root"), nil
	}
	acc := &bus.MQTTAccess{Name: p.UserName}
	for _, g := range userGrants {
		// Conditions see the MQTT client's address and the operation's
		// method; there is no thing name at connect time, so a statement
		// conditioned on a path variable does not apply.
		r, _ := http.NewRequestWithContext(ctx, g.method, "/mqtt", nil)
		r.RemoteAddr = net.JoinHostPort(l.RemoteAddr, "0")
		if err := s.users.Authorize(ctx, p, g.op, r); err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
				continue
			}
			return nil, reason(err)
		}
		acc.Publish = append(acc.Publish, g.pub...)
		acc.Subscribe = append(acc.Subscribe, g.subscribe...)
	}
	if len(acc.Publish) == 0 && len(acc.Subscribe) == 0 {
		return nil, fmt.Errorf("user %s may call none of the operations that open MQTT topics (%s)", p.UserName, grantOps())
	}
	return acc, nil
}

func grantOps() string {
	var ops []string
	for _, g := range userGrants {
		ops = append(ops, g.op)
	}
	return strings.Join(ops, ", ")
}

// reason is an error's message for the log (API errors carry no secrets).
func reason(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return errors.New(ae.Message)
	}
	return err
}
