// Unit tests of the button source's payload normalization.
package flow

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestButtonMessage(t *testing.T) {
	all := &Source{Kind: "button", Config: map[string]any{"clickTypes": ClickTypes}}
	longOnly := &Source{Kind: "button", Config: map[string]any{"clickTypes": []string{"LONG"}}}
	cases := []struct {
		name    string
		payload string
		src     *Source
		click   string
		battery any // float64 or nil
		ok      bool
	}{
		{"SORACOM LTE-M Button, single", `{"clickType":1,"clickTypeName":"SINGLE","batteryLevel":0.75,"binaryParserEnabled":true}`, all, "SINGLE", 0.75, true},
		{"SORACOM, double", `{"clickType":2,"clickTypeName":"DOUBLE","batteryLevel":1,"binaryParserEnabled":true}`, all, "DOUBLE", 1.0, true},
		{"SORACOM, long", `{"clickType":3,"clickTypeName":"LONG","batteryLevel":0.25,"binaryParserEnabled":true}`, all, "LONG", 0.25, true},
		{"SORACOM, number only", `{"clickType":2,"batteryLevel":0.5}`, all, "DOUBLE", 0.5, true},
		{"clickType as text", `{"clickType":"3"}`, all, "LONG", nil, true},
		{"name in lower case", `{"clickTypeName":"single"}`, all, "SINGLE", nil, true},
		{"AWS IoT 1-Click", `{"deviceInfo":{"deviceId":"G030PM0123456789","type":"button","remainingLife":99.85,"attributes":{"projectRegion":"ap-northeast-1","projectName":"call","placementName":"booth","deviceTemplateName":"call-button"}},"deviceEvent":{"buttonClicked":{"clickType":"DOUBLE","reportedTime":"2018-05-04T23:26:33.747Z"}},"placementInfo":{"projectName":"call","placementName":"booth","attributes":{"staff":"tanaka"},"devices":{"call-button":"G030PM0123456789"}}}`, all, "DOUBLE", 0.9985, true},
		{"1-Click without battery", `{"deviceEvent":{"buttonClicked":{"clickType":"LONG"}}}`, all, "LONG", nil, true},
		{"AWS IoT Enterprise Button", `{"serialNumber":"G030JF0512345678","batteryVoltage":"1705mV","clickType":"SINGLE"}`, all, "SINGLE", nil, true},
		{"battery clamped", `{"clickType":1,"batteryLevel":1.5}`, all, "SINGLE", 1.0, true},
		{"filtered by clickTypes", `{"clickType":1,"clickTypeName":"SINGLE"}`, longOnly, "", nil, false},
		{"kept by clickTypes", `{"clickType":3}`, longOnly, "LONG", nil, true},
		{"sensor data", `{"temperature":21.5}`, all, "", nil, false},
		{"unknown click", `{"clickType":4}`, all, "", nil, false},
		{"fractional click", `{"clickType":1.5}`, all, "", nil, false},
		{"1-Click event without a click", `{"deviceEvent":{"somethingElse":{}}}`, all, "", nil, false},
		{"text", `"SINGLE"`, all, "", nil, false},
	}
	for _, c := range cases {
		var p any
		if err := json.Unmarshal([]byte(c.payload), &p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		msg, ok := buttonMessage("d-button1", p, c.src)
		if ok != c.ok {
			t.Errorf("%s: ok = %v", c.name, ok)
			continue
		}
		if !ok {
			continue
		}
		want := map[string]any{"deviceId": "d-button1", "clickType": c.click, "batteryLevel": c.battery, "raw": p}
		if !reflect.DeepEqual(msg, want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.name, msg, want)
		}
	}
}
