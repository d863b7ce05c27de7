package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMatchAPI(t *testing.T) {
	cases := []struct {
		pattern, op string
		want        bool
	}{
		{"*", "User:listUsers", true},
		{"*", "Auth:logout", true},
		{"User:*", "User:listUsers", true},
		{"User:*", "Users:listUsers", false}, // the colon is part of the prefix
		{"User:*", "Operator:getOperator", false},
		{"User:list*", "User:listUsers", true},
		{"User:list*", "User:listUserAuthKeys", true},
		{"User:list*", "User:getUser", false},
		{"User:listUsers*", "User:listUsers", true}, // an empty rest matches
		{"User:listUsers", "User:listUsers", true},
		{"User:listUsers", "User:listUser", false},
		{"User:listUser", "User:listUsers", false},  // no implicit prefix
		{"User:ListUsers", "User:listUsers", false}, // case matters
		{"user:listUsers", "User:listUsers", false},
	}
	for _, c := range cases {
		if got := MatchAPI(c.pattern, c.op); got != c.want {
			t.Errorf("MatchAPI(%q, %q) = %v, want %v", c.pattern, c.op, got, c.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		err  string // "" = valid; otherwise part of the error
	}{
		{"minimal", `{"statements":[]}`, ""},
		{"string api", `{"statements":[{"effect":"allow","api":"*"}]}`, ""},
		{"array api", `{"statements":[{"effect":"deny","api":["Device:*","User:list*","Auth:logout"]}]}`, ""},
		{"whitespace around", " \n{\"statements\":[]}\n ", ""},
		{"SORACOM example", `{"statements":[
			{"effect":"allow","api":["SoraCam:*","FileEntry:putFile","OAuth2:authorize"]},
			{"effect":"allow","api":"DataEntry:getDataEntries","condition":"currentDate >= date(2023, 02, 01) and ipAddress('10.0.0.0/24')"},
			{"effect":"deny","api":["Operator:generateSupportToken"]}]}`, ""},
		{"all condition names", `{"statements":[{"effect":"allow","api":"*","condition":
			"samUserName == pathVariable('user_name') or httpMethod == 'GET' or currentDateTime > date(2020, 1, 1) or ipAddress('::1', '10.0.0.0/8')"}]}`, ""},
		{"blank condition", `{"statements":[{"effect":"allow","api":"*","condition":"  "}]}`, ""},

		{"empty", ``, "not a valid permission document"},
		{"null", `null`, "statements: required"},
		{"no statements", `{}`, "statements: required"},
		{"statements null", `{"statements":null}`, "statements: required"},
		{"statements object", `{"statements":{}}`, "not a valid permission document"},
		{"array", `[]`, "not a valid permission document"},
		{"trailing object", `{"statements":[]}{}`, "after the top-level object"},
		{"trailing brace", `{"statements":[]}}`, "not a valid permission document"},
		{"unknown top field", `{"statements":[],"Version":"2012-10-17"}`, "Version"},
		{"unknown statement field", `{"statements":[{"effect":"allow","api":"*","resource":"*"}]}`, "resource"},
		{"effect case", `{"statements":[{"effect":"Allow","api":"*"}]}`, `"Allow" must be allow or deny`},
		{"no effect", `{"statements":[{"api":"*"}]}`, "statements[0].effect"},
		{"no api", `{"statements":[{"effect":"allow"}]}`, "statements[0].api: required"},
		{"null api", `{"statements":[{"effect":"allow","api":null}]}`, "statements[0].api"},
		{"empty api array", `{"statements":[{"effect":"allow","api":[]}]}`, "statements[0].api: required"},
		{"api object", `{"statements":[{"effect":"allow","api":{}}]}`, "string or an array"},
		{"api number in array", `{"statements":[{"effect":"allow","api":["*",1]}]}`, "string or an array"},
		{"empty name", `{"statements":[{"effect":"allow","api":""}]}`, "is not an API name"},
		{"no operation", `{"statements":[{"effect":"allow","api":"User:"}]}`, "is not an API name"},
		{"service only", `{"statements":[{"effect":"allow","api":"User"}]}`, "is not an API name"},
		{"service wildcard", `{"statements":[{"effect":"allow","api":"Us*"}]}`, "is not an API name"},
		{"inner wildcard", `{"statements":[{"effect":"allow","api":"User:*Users"}]}`, "is not an API name"},
		{"double wildcard", `{"statements":[{"effect":"allow","api":"User:list**"}]}`, "is not an API name"},
		{"lowercase service", `{"statements":[{"effect":"allow","api":"user:*"}]}`, "is not an API name"},
		{"spaces", `{"statements":[{"effect":"allow","api":" User:* "}]}`, "is not an API name"},
		{"star colon", `{"statements":[{"effect":"allow","api":"*:*"}]}`, "is not an API name"},
		{"condition syntax", `{"statements":[{"effect":"allow","api":"*","condition":"ipAddress("}]}`, "statements[0].condition"},
		{"condition unknown function", `{"statements":[{"effect":"allow","api":"*","condition":"sourceIp('1.2.3.4')"}]}`, "statements[0].condition"},
		{"condition not boolean", `{"statements":[{"effect":"allow","api":"*","condition":"date(2023, 1, 1)"}]}`, "statements[0].condition"},
		{"condition too big", `{"statements":[{"effect":"allow","api":"*","condition":"` + strings.Repeat("true and ", 300) + `true"}]}`, "statements[0].condition"},
		{"every problem reported", `{"statements":[{"effect":"maybe","api":"x"},{"effect":"allow","api":"*","condition":"1 +"}]}`,
			"statements[0].effect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePolicy(c.doc)
			if c.err == "" {
				if err != nil || p == nil {
					t.Fatalf("ParsePolicy: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePolicy accepted %s", c.doc)
			}
			if !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %q lacks %q", err, c.err)
			}
		})
	}
	_, err := ParsePolicy(`{"statements":[{"effect":"maybe","api":"x"},{"effect":"allow","api":"*","condition":"1 +"}]}`)
	for _, want := range []string{"statements[0].effect", "statements[0].api", "statements[1].condition"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
}

func TestStripLeadingZeros(t *testing.T) {
	cases := []struct{ in, want string }{
		{"date(2023, 02, 01)", "date(2023, 2, 1)"},
		{"date(2023,02,01)", "date(2023,2,1)"},
		{"0", "0"},
		{"00", "0"},
		{"x == 0", "x == 0"},
		{"100 == 0100", "100 == 100"},
		{"1.05 > 0.5", "1.05 > 0.5"},
		{"v007 == 1", "v007 == 1"},
		{"pathVariable('imsi') == '001010000000001'", "pathVariable('imsi') == '001010000000001'"},
		{`samUserName == "user-007"`, `samUserName == "user-007"`},
		{"samUserName == `a 07`", "samUserName == `a 07`"},
		{`x == 'it\'s 07' and y == 07`, `x == 'it\'s 07' and y == 7`},
		{"ipAddress('10.0.0.0/08')", "ipAddress('10.0.0.0/08')"},
		{"'unterminated 07", "'unterminated 07"},
	}
	for _, c := range cases {
		if got := stripLeadingZeros(c.in); got != c.want {
			t.Errorf("stripLeadingZeros(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAllows(t *testing.T) {
	now := time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC)
	req := func(method, addr string, vars ...string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(method, "/x", nil)
			r.RemoteAddr = addr
			for i := 0; i+1 < len(vars); i += 2 {
				r.SetPathValue(vars[i], vars[i+1])
			}
			return r
		}
	}
	get := req("GET", "127.0.0.1:5000", "user_name", "alice")
	pol := func(doc string) *Policy {
		t.Helper()
		p, err := ParsePolicy(doc)
		if err != nil {
			t.Fatalf("ParsePolicy(%s): %v", doc, err)
		}
		return p
	}
	allow := func(api, cond string) string {
		return `{"effect":"allow","api":"` + api + `","condition":"` + cond + `"}`
	}
	deny := func(api, cond string) string {
		return `{"effect":"deny","api":"` + api + `","condition":"` + cond + `"}`
	}
	doc := func(s ...string) string { return `{"statements":[` + strings.Join(s, ",") + `]}` }

	cases := []struct {
		name     string
		op       string
		r        func() *http.Request
		user     string
		policies []string // "" = nil policy
		want     bool
	}{
		{"nothing", "User:listUsers", get, "alice", nil, false},
		{"nil policies", "User:listUsers", get, "alice", []string{"", ""}, false},
		{"empty", "User:listUsers", get, "alice", []string{doc()}, false},
		{"allow", "User:listUsers", get, "alice", []string{doc(allow("User:*", ""))}, true},
		{"other service", "Device:listDevices", get, "alice", []string{doc(allow("User:*", ""))}, false},
		{"deny wins", "User:listUsers", get, "alice", []string{doc(allow("*", ""), deny("User:listUsers", ""))}, false},
		{"deny wins across policies", "User:listUsers", get, "alice", []string{doc(allow("*", "")), doc(deny("User:*", ""))}, false},
		{"deny wins across policies, reversed", "User:listUsers", get, "alice", []string{doc(deny("User:*", "")), doc(allow("*", ""))}, false},
		{"allow from either policy", "User:listUsers", get, "alice", []string{"", doc(allow("User:listUsers", ""))}, true},
		{"deny elsewhere does not matter", "User:listUsers", get, "alice", []string{doc(allow("*", ""), deny("User:getUser", ""))}, true},
		{"own name", "User:getUser", get, "alice", []string{doc(allow("User:getUser", "pathVariable('user_name') == samUserName"))}, true},
		{"other name", "User:getUser", req("GET", "127.0.0.1:5000", "user_name", "bob"), "alice",
			[]string{doc(allow("User:getUser", "pathVariable('user_name') == samUserName"))}, false},
		{"missing path variable", "User:getUser", req("GET", "127.0.0.1:5000"), "alice",
			[]string{doc(allow("User:getUser", "pathVariable('user_name') == samUserName"))}, false},
		{"loopback /32", "User:listUsers", get, "alice", []string{doc(allow("*", "ipAddress('127.0.0.1/32')"))}, true},
		{"bare address", "User:listUsers", get, "alice", []string{doc(allow("*", "ipAddress('127.0.0.1')"))}, true},
		{"other network", "User:listUsers", get, "alice", []string{doc(allow("*", "ipAddress('10.0.0.0/8')"))}, false},
		{"any of several", "User:listUsers", get, "alice", []string{doc(allow("*", "ipAddress('10.0.0.0/8', '127.0.0.0/8')"))}, true},
		{"IPv6", "User:listUsers", req("GET", "[2001:db8::1]:443"), "alice", []string{doc(allow("*", "ipAddress('2001:db8::/32')"))}, true},
		{"IPv6 outside", "User:listUsers", req("GET", "[2001:db9::1]:443"), "alice", []string{doc(allow("*", "ipAddress('2001:db8::/32')"))}, false},
		{"bad CIDR never matches", "User:listUsers", get, "alice", []string{doc(allow("*", "ipAddress('127.0.0.1/99', 'nonsense')"))}, false},
		{"unparsable remote address", "User:listUsers", req("GET", "somewhere"), "alice", []string{doc(allow("*", "ipAddress('0.0.0.0/0')"))}, false},
		{"deny from outside does not apply", "User:listUsers", get, "alice", []string{doc(allow("*", ""), deny("*", "ipAddress('10.0.0.0/8')"))}, true},
		{"after date", "User:listUsers", get, "alice", []string{doc(allow("*", "currentDate >= date(2023, 02, 01)"))}, true},
		{"on the day", "User:listUsers", get, "alice", []string{doc(allow("*", "currentDate == date(2024, 03, 15)"))}, true},
		{"before date", "User:listUsers", get, "alice", []string{doc(allow("*", "currentDate < date(2023, 02, 01)"))}, false},
		{"date time", "User:listUsers", get, "alice", []string{doc(allow("*", "currentDateTime > date(2024, 3, 15)"))}, true},
		{"method", "User:listUsers", get, "alice", []string{doc(allow("*", "httpMethod == 'GET'"))}, true},
		{"other method", "User:deleteUser", req("DELETE", "127.0.0.1:1"), "alice", []string{doc(allow("*", "httpMethod == 'GET'"))}, false},
		{"string with leading zeros", "User:getUser", req("GET", "127.0.0.1:1", "user_name", "007"), "007",
			[]string{doc(allow("User:getUser", "pathVariable('user_name') == '007'"))}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ps []*Policy
			for _, d := range c.policies {
				if d == "" {
					ps = append(ps, nil)
				} else {
					ps = append(ps, pol(d))
				}
			}
			if got := Allows(c.op, c.r(), c.user, now, ps...); got != c.want {
				t.Fatalf("Allows = %v, want %v", got, c.want)
			}
		})
	}
	// Without a request (in-process callers) conditions on it are false.
	if Allows("User:listUsers", nil, "alice", now, pol(doc(allow("*", "ipAddress('0.0.0.0/0')")))) {
		t.Fatal("ipAddress without a request")
	}
	if !Allows("User:listUsers", nil, "alice", now, pol(doc(allow("*", "")))) {
		t.Fatal("unconditional allow without a request")
	}
}
