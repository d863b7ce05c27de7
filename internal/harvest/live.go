package harvest

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"

	"github.com/nagare-iot/nagare/internal/live"
)

var resourceTypeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,31}$`)

// LiveTopic is the console's "data" push: each new Harvest Data entry of
// one resource, as the same DataEntry JSON the API lists, read from the
// HARVEST subjects (so writes on every node reach every browser).
func LiveTopic() live.Topic {
	return live.Topic{
		Name:   "data",
		Params: []live.Param{{Field: "resourceType", PathValue: "resource_type"}, {Field: "resourceId", PathValue: "resource_id"}},
		Op:     "DataEntry:getDataEntries",
		Subject: func(p map[string]string) (string, error) {
			if !resourceTypeRE.MatchString(p["resourceType"]) {
				return "", fmt.Errorf("resource_type %q is not a resource type", p["resourceType"])
			}
			return Subject(p["resourceType"], p["resourceId"]), nil
		},
		Message: func(m *nats.Msg, operatorID string) (map[string]any, bool) {
			if m.Header.Get(OperatorHeader) != operatorID || !json.Valid(m.Data) {
				return nil, false
			}
			return map[string]any{"entry": json.RawMessage(m.Data)}, true
		},
	}
}
