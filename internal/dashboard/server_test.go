package dashboard_test

import (
	"os"
	"testing"

	"github.com/nagare-iot/nagare/internal/servertest"
)

// The seed 000 example dashboard through the real server: applied, read
// back unchanged, and permission-checked.
func TestExampleDashboardOnTheServer(t *testing.T) {
	src, err := os.ReadFile("../../examples/crowding/dashboard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts := servertest.Start(t)
	res := ts.Root.Do("PUT", "/v1/dashboards/crowding", src, "Content-Type", "application/yaml")
	if res.Status != 201 {
		t.Fatalf("put: %d %s", res.Status, res.Body)
	}
	if res := ts.Root.Do("GET", "/v1/dashboards/crowding?format=yaml", nil); res.Status != 200 || string(res.Body) != string(src) {
		t.Errorf("read back: %d", res.Status)
	}
	var list []struct{ Name string }
	ts.Root.Do("GET", "/v1/dashboards", nil).JSON(&list)
	if len(list) != 1 || list[0].Name != "crowding" {
		t.Errorf("list: %+v", list)
	}
	if res := ts.Anon().Do("GET", "/v1/dashboards", nil); res.Status != 401 {
		t.Errorf("anonymous: %d", res.Status)
	}
}
