package flow

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MinTimerInterval is the shortest interval timer (NATS schedules fire at
// most once a second; a shorter period would only queue work).
const MinTimerInterval = time.Second

func init() {
	RegisterSource(Spec{Kind: "timer",
		Summary: "Fires on an interval or a cron schedule (6 fields, with seconds), once per period even with several nodes. Message: the configured payload or null; context `{eventType: \"schedule\", scheduleId, timestamp}`.",
		Fields: []Field{
			{Name: "interval", Type: TDuration, Min: MinTimerInterval.Seconds(), Doc: "period, e.g. 5m (at least 1s)"},
			{Name: "cron", Type: TString, Doc: "`sec min hour day month weekday`, e.g. `0 */5 * * * *`"},
			{Name: "timezone", Type: TString, Default: "UTC", Doc: "IANA time zone for cron, e.g. Asia/Tokyo"},
			{Name: "payload", Type: TAny, Doc: "message sent at each firing"},
		},
		OneOf: [][]string{{"interval", "cron"}},
		Check: func(cfg map[string]any) []string {
			var out []string
			if c, ok := cfg["cron"].(string); ok {
				if err := checkCron(c); err != nil {
					out = append(out, "cron: "+err.Error())
				}
			}
			if tz, _ := cfg["timezone"].(string); tz != "" {
				if _, err := time.LoadLocation(tz); err != nil {
					out = append(out, fmt.Sprintf("timezone: %q is not an IANA time zone", tz))
				}
			}
			return out
		},
	})
	RegisterSource(Spec{Kind: "device",
		Summary: "Harvest Data published by an Inventory device, or by any device of a group. Message: the published JSON (or text); context `{eventType: \"device\", resource: {resourceType, resourceId}, group: {groupId}, time}`.",
		Fields: []Field{
			{Name: "deviceId", Type: TString, Doc: "one device"},
			{Name: "groupId", Type: TString, Doc: "every device in the group"},
		},
		OneOf: [][]string{{"deviceId", "groupId"}},
	})
	RegisterSource(Spec{Kind: "webhook",
		Summary: "An incoming webhook: a secret URL for this channel, no other authentication. Message: the posted body (JSON parsed); context `{eventType: \"webhook\", headers, query}`.",
	})
	RegisterSource(Spec{Kind: "files",
		Summary: "Harvest Files created, updated or deleted under a prefix. Message: `{eventType, path, contentType, presignedUrls: {get}}` (no `get` on delete, valid 1 h).",
		Fields: []Field{
			{Name: "prefix", Type: TString, Required: true, Doc: "path prefix, e.g. /cams/"},
			{Name: "events", Type: TStrings, Enum: []string{"created", "updated", "deleted"}, Default: []string{"created", "updated", "deleted"}, Doc: "which changes fire"},
		},
		Check: func(cfg map[string]any) []string {
			if p, _ := cfg["prefix"].(string); !strings.HasPrefix(p, "/") {
				return []string{"prefix must start with /"}
			}
			return nil
		},
	})

	RegisterAction(Spec{Kind: "webhook", Run: runWebhook,
		Summary: "Calls an HTTP endpoint. Output: `{status, headers, body}` with a JSON body parsed.",
		Fields: []Field{
			{Name: "url", Type: TTemplate, Required: true, Escape: "url", Doc: "http(s) URL; values inside it are URL-escaped"},
			{Name: "method", Type: TEnum, Enum: []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}, Default: "POST", Doc: "HTTP method"},
			{Name: "headers", Type: TMap, Doc: "request headers"},
			{Name: "body", Type: TAny, Doc: "request body: an object is sent as JSON, a string as is; omitted: the action's input as JSON"},
			{Name: "contentType", Type: TTemplate, Default: "application/json", Doc: "Content-Type of the body"},
			{Name: "basicAuth", Type: TCredential, Doc: "username-password credential for Basic auth"},
			{Name: "maxResponseBytes", Type: TInt, Min: 1, Max: 16 << 20, Default: 65536, Doc: "longer responses are an error"},
		},
	})
	RegisterAction(Spec{Kind: "api", Run: runAPI,
		Summary: "Calls a nagare API operation as a user, permission-checked (e.g. the SoraCam export and poll of the crowding monitor). Output: the response body.",
		Fields: []Field{
			{Name: "operation", Type: TOperation, Required: true, Doc: "operation name, e.g. SoraCam:exportSoraCamDeviceRecordedImage"},
			{Name: "user", Type: TString, Required: true, Doc: "SAM user the call runs as; its permissions apply"},
			{Name: "path", Type: TMap, Doc: "path parameters, e.g. device_id"},
			{Name: "query", Type: TMap, Doc: "query parameters"},
			{Name: "body", Type: TAny, Doc: "JSON request body"},
		},
	})
	RegisterAction(Spec{Kind: "republish", Run: runPassThrough, Idempotent: true,
		Summary: "Passes its input on unchanged (shape it with the output's transform). Output: the input.",
	})
	RegisterAction(Spec{Kind: "harvest", Run: runHarvest,
		Summary: "Writes a Harvest Data entry. Output: `{resourceType, resourceId, time}`.",
		Fields: []Field{
			{Name: "resourceType", Type: TEnum, Enum: []string{"Device", "Sim", "SoraCam", "Subscriber", "LoraDevice", "SigfoxDevice", "App"}, Default: "Device", Doc: "resource type (App: data of the app itself, any resourceId)"},
			{Name: "resourceId", Type: TTemplate, Required: true, Doc: "resource ID"},
			{Name: "data", Type: TAny, Doc: "entry content (an object is stored as JSON); omitted: the action's input"},
			{Name: "contentType", Type: TTemplate, Default: "application/json", Doc: "entry content type"},
		},
	})
	RegisterAction(Spec{Kind: "files", Run: runFiles, Idempotent: true,
		Summary: "Writes a Harvest File from a URL or from the payload. Output: the file entry.",
		Fields: []Field{
			{Name: "path", Type: TTemplate, Required: true, Doc: "file path, e.g. /cams/${payload.deviceId}/${now()}.jpg"},
			{Name: "url", Type: TTemplate, Doc: "download the content from this URL"},
			{Name: "content", Type: TAny, Doc: "the content itself (an object is stored as JSON)"},
			{Name: "contentType", Type: TTemplate, Doc: "content type (default: the download's, or application/json)"},
			{Name: "metadata", Type: TMap, Doc: "metadata stored with the file"},
			{Name: "maxBytes", Type: TInt, Min: 1, Max: 1 << 30, Default: 32 << 20, Doc: "largest download accepted"},
		},
		OneOf: [][]string{{"url", "content"}},
	})
	RegisterAction(Spec{Kind: "delay", Run: runPassThrough, Idempotent: true,
		Summary: "Waits, then passes its input on (durably: the wait survives restarts). Output: the input.",
		Fields: []Field{
			{Name: "duration", Type: TDuration, Required: true, Min: 0, Max: MaxOutputDelay.Seconds(), Doc: "how long (at most 900s)"},
		},
	})
	RegisterAction(Spec{Kind: "ai", Run: runAI, Idempotent: true, Summary: aiSummary, Fields: aiFields, Check: checkAI})
}

var cronFieldRE = regexp.MustCompile(`^(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$`)

var cronTokenRE = regexp.MustCompile(`[0-9A-Za-z]+`)

var cronRanges = [6][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}

var cronNames = map[string]int{
	"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
	"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6,
}

// checkCron validates a 6-field cron expression (seconds first).
func checkCron(c string) error {
	f := strings.Fields(c)
	if len(f) != 6 {
		return fmt.Errorf("%q has %d fields; want 6: sec min hour day month weekday", c, len(f))
	}
	names := [6]string{"seconds", "minutes", "hours", "day of month", "month", "day of week"}
	for i, field := range f {
		if !cronFieldRE.MatchString(field) {
			return fmt.Errorf("%s field %q is not valid", names[i], field)
		}
		for _, tok := range cronTokenRE.FindAllString(field, -1) {
			v, err := strconv.Atoi(tok)
			if err != nil {
				n, ok := cronNames[strings.ToUpper(tok)]
				if !ok || (i != 4 && i != 5) {
					return fmt.Errorf("%s field %q: %q is not a number", names[i], field, tok)
				}
				v = n
			}
			if strings.Contains(field, "/"+tok) {
				if v == 0 {
					return fmt.Errorf("%s field %q: step 0", names[i], field)
				}
				continue
			}
			if v < cronRanges[i][0] || v > cronRanges[i][1] {
				return fmt.Errorf("%s field %q: %d is outside %d-%d", names[i], field, v, cronRanges[i][0], cronRanges[i][1])
			}
		}
	}
	return nil
}
