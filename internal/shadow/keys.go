package shadow

import (
	"strings"
)

// Names in KV keys and event subjects. KV keys allow only
// [-/_=.a-zA-Z0-9] and "." separates tokens, while AWS thing names may
// hold ":" and shadow names "$": every byte outside [A-Za-z0-9_-] is
// written =XX (hex). "=" alone, which no encoded name can be, stands for
// the classic shadow. Keys are <operator>.<thing>.<shadow>, so one
// operator's shadows (or one thing's) are a key filter away, and a second
// operator needs no new layout.

const classicToken = "="

func encodeName(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func decodeName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func shadowToken(name string) string {
	if name == "" {
		return classicToken
	}
	return encodeName(name)
}

// Key is the KV key of a shadow.
func Key(op, thing, name string) string {
	return encodeName(op) + "." + encodeName(thing) + "." + shadowToken(name)
}

// parseKey splits a KV key (or the tail of an event subject).
func parseKey(key string) (op, thing, name string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	op, ok1 := decodeName(parts[0])
	thing, ok2 := decodeName(parts[1])
	if parts[2] != classicToken {
		var ok3 bool
		if name, ok3 = decodeName(parts[2]); !ok3 || name == "" {
			return "", "", "", false
		}
	}
	return op, thing, name, ok1 && ok2
}

// Change feed. Every accepted update and delete is stored in EventStream
// on EventSubject(op, thing, name), for flows (a durable consumer) and the
// console (a plain subscription sees the same messages).
const (
	EventStream        = "SHADOW_EVENTS"
	EventSubjectPrefix = "shadow.changed."
	// OperatorHeader carries the operator of an event.
	OperatorHeader = "Nagare-Operator-Id"
	// HopHeader carries the flow hop count of an update made by a flow
	// action, so a flow that updates the shadow it listens to stops at
	// the hop limit instead of looping for ever.
	HopHeader = "Nagare-Flow-Hop"
)

// EventSubject is the change-feed subject of one shadow.
func EventSubject(op, thing, name string) string {
	return EventSubjectPrefix + Key(op, thing, name)
}

// ParseEventSubject returns the shadow an event subject names.
func ParseEventSubject(subject string) (op, thing, name string, ok bool) {
	if !strings.HasPrefix(subject, EventSubjectPrefix) {
		return "", "", "", false
	}
	return parseKey(strings.TrimPrefix(subject, EventSubjectPrefix))
}

// MQTT topics in their NATS form. The embedded NATS maps the MQTT topic
// $aws/things/{thing}/shadow[/name/{name}]/{op} to the subject
// $aws.things.{thing}.shadow[.name.{name}].{op}, and a "." inside a level
// to "//".

func natsToken(level string) string { return strings.ReplaceAll(level, ".", "//") }

func mqttLevel(token string) string { return strings.ReplaceAll(token, "//", ".") }

// TopicPrefix is the NATS subject prefix of a shadow's topics
// ($aws.things.<thing>.shadow[.name.<name>]).
func TopicPrefix(thing, name string) string {
	p := "$aws.things." + natsToken(thing) + ".shadow"
	if name != "" {
		p += ".name." + natsToken(name)
	}
	return p
}

// requestSubjects are the subjects the responder serves: exactly the
// request topics, not "…shadow.>", so the service never receives its own
// accepted/rejected/delta/documents messages back.
var requestSubjects = []string{
	"$aws.things.*.shadow.update", "$aws.things.*.shadow.get", "$aws.things.*.shadow.delete",
	"$aws.things.*.shadow.name.*.update", "$aws.things.*.shadow.name.*.get", "$aws.things.*.shadow.name.*.delete",
}

// topicRequest is a request parsed from its subject. Prefix is the
// subject's own prefix, so replies go to exactly the topics the client
// used even when its names are invalid.
type topicRequest struct {
	Prefix, Thing, Name, Op string
}

func parseTopic(subject string) (topicRequest, bool) {
	t := strings.Split(subject, ".")
	switch {
	case len(t) == 5 && t[0] == "$aws" && t[1] == "things" && t[3] == "shadow":
		return topicRequest{Prefix: strings.Join(t[:4], "."), Thing: mqttLevel(t[2]), Op: t[4]}, true
	case len(t) == 7 && t[0] == "$aws" && t[1] == "things" && t[3] == "shadow" && t[4] == "name":
		return topicRequest{Prefix: strings.Join(t[:6], "."), Thing: mqttLevel(t[2]), Name: mqttLevel(t[5]), Op: t[6]}, true
	}
	return topicRequest{}, false
}
