// The button event source: presses of button devices (SORACOM LTE-M
// Button, AWS IoT 1-Click and look-alikes) arriving as Harvest Data, like
// the device source, normalized to one message shape. This file owns the
// source's spec and the payload normalization; apps.go feeds it.
package flow

import (
	"math"
	"strconv"
	"strings"
)

// ClickTypes are a button's presses, as the button source names them.
var ClickTypes = []string{"SINGLE", "DOUBLE", "LONG"}

func init() {
	RegisterSource(Spec{Kind: "button",
		Summary: "Presses of a button device (SORACOM LTE-M Button `{clickType: 1|2|3, clickTypeName, batteryLevel}`, AWS IoT 1-Click `{deviceInfo, deviceEvent: {buttonClicked: {clickType}}}`) published as Harvest Data by an Inventory device or any device of a group. Message: `{deviceId, clickType: SINGLE|DOUBLE|LONG, batteryLevel: 0–1 or null, raw}`; context as for `device` with `eventType: \"button\"`. Other data from the device is ignored.",
		Fields: []Field{
			{Name: "deviceId", Type: TString, Doc: "one device"},
			{Name: "groupId", Type: TString, Doc: "every device in the group"},
			{Name: "clickTypes", Type: TStrings, Enum: ClickTypes, Default: ClickTypes, Doc: "which presses fire"},
		},
		OneOf: [][]string{{"deviceId", "groupId"}},
	})
}

// buttonMessage normalizes a device's publish for a button source: ok is
// false when it is not a press or its click type is not among the
// source's clickTypes. deviceID is the Inventory device that published
// (a 1-Click payload's own deviceInfo.deviceId stays in raw).
func buttonMessage(deviceID string, payload any, src *Source) (map[string]any, bool) {
	click, battery, ok := parseButton(payload)
	if !ok {
		return nil, false
	}
	if want, _ := src.Config["clickTypes"].([]string); len(want) > 0 && !contains(want, click) {
		return nil, false
	}
	var level any // null when the button does not say
	if battery >= 0 {
		level = battery
	}
	return map[string]any{"deviceId": deviceID, "clickType": click, "batteryLevel": level, "raw": payload}, true
}

// parseButton reads a press from the payload shapes buttons publish. The
// battery level is 0–1, or -1 when unknown.
func parseButton(payload any) (click string, battery float64, ok bool) {
	m, isMap := payload.(map[string]any)
	if !isMap {
		return "", -1, false
	}
	battery = -1
	// AWS IoT 1-Click: remainingLife is a percentage.
	if ev, _ := m["deviceEvent"].(map[string]any); ev != nil {
		bc, _ := ev["buttonClicked"].(map[string]any)
		if bc == nil {
			return "", -1, false
		}
		click = clickName(bc["clickType"])
		if info, _ := m["deviceInfo"].(map[string]any); info != nil {
			if p, isNum := info["remainingLife"].(float64); isNum {
				battery = clamp01(math.Round(p*100) / 1e4) // 99.85 → 0.9985, not 0.99849…
			}
		}
		return click, battery, click != ""
	}
	// SORACOM LTE-M Button (binary parser on): clickType 1/2/3 with its
	// name beside it; batteryLevel 0.25–1. The name wins when both are
	// there and disagree: it is what the console and docs show.
	click = clickName(m["clickTypeName"])
	if click == "" {
		click = clickName(m["clickType"])
	}
	if b, isNum := m["batteryLevel"].(float64); isNum {
		battery = clamp01(b)
	}
	return click, battery, click != ""
}

// clickName maps 1/2/3, "1"/"2"/"3" and names (any case) to SINGLE,
// DOUBLE or LONG; "" for anything else.
func clickName(v any) string {
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) && x >= 1 && x <= 3 {
			return ClickTypes[int(x)-1]
		}
	case string:
		s := strings.ToUpper(strings.TrimSpace(x))
		if n, err := strconv.Atoi(s); err == nil {
			return clickName(float64(n))
		}
		if contains(ClickTypes, s) {
			return s
		}
	}
	return ""
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }
