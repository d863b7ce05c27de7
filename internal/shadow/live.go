package shadow

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/nagare-iot/nagare/internal/live"
)

// LiveTopic is the console's "shadow" push: every change of any shadow of
// one thing (classic and named), read from the change feed, so a board
// sees writes made on every node and through every door (MQTT, HTTP,
// flows). Checked as Shadow:getThingShadow on that thing.
//
//	→ {"type":"subscribe","id":"1","topic":"shadow","thingName":"alice"}
//	← {"type":"shadow","id":"1","thingName":"alice","shadowName":"","event":"updated",
//	   "documents":{"previous":{…},"current":{…},"timestamp":…}}
//
// shadowName is "" for the classic shadow; after a delete, current is null.
func LiveTopic() live.Topic {
	return live.Topic{
		Name:   "shadow",
		Params: []live.Param{{Field: "thingName", PathValue: "thing_name"}},
		Op:     "Shadow:getThingShadow",
		Subject: func(p map[string]string) (string, error) {
			thing := p["thingName"]
			if !ValidThingName(thing) {
				return "", fmt.Errorf("thingName %q is not a thing name", thing)
			}
			// Any operator and shadow; Message keeps the subscriber's own.
			return EventSubjectPrefix + "*." + encodeName(thing) + ".*", nil
		},
		Message: func(m *nats.Msg, operatorID string) (map[string]any, bool) {
			if m.Header.Get(OperatorHeader) != operatorID {
				return nil, false
			}
			var ev struct {
				Type        string          `json:"type"`
				ThingName   string          `json:"thingName"`
				ShadowName  string          `json:"shadowName"`
				Previous    json.RawMessage `json:"previous"`
				Current     json.RawMessage `json:"current"`
				Timestamp   int64           `json:"timestamp"`
				ClientToken string          `json:"clientToken,omitempty"`
			}
			if json.Unmarshal(m.Data, &ev) != nil {
				return nil, false
			}
			docs := map[string]any{"previous": ev.Previous, "current": ev.Current, "timestamp": ev.Timestamp}
			if ev.ClientToken != "" {
				docs["clientToken"] = ev.ClientToken
			}
			return map[string]any{"thingName": ev.ThingName, "shadowName": ev.ShadowName, "event": ev.Type, "documents": docs}, true
		},
	}
}
