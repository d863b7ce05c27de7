package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func noEnv(string) string { return "" }

// TestBadFileGolden: every problem in a file is reported at once, with
// its position, in a stable form.
func TestBadFileGolden(t *testing.T) {
	_, err := Load("testdata/bad.yaml", nil, noEnv)
	if err == nil {
		t.Fatal("bad.yaml accepted")
	}
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Fatalf("got:\n%s\nwant (go test ./internal/config -update to accept):\n%s", got, want)
	}
}

func TestGoodFile(t *testing.T) {
	c, err := Load("testdata/good.yaml", nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9090" || c.DataDir != "/var/lib/nagare" || c.LogFormat != "json" ||
		c.TokenTimeout != time.Hour || c.MaxPublishBytes != 64<<10 || c.NATS != "nats://a:4222,nats://b:4222" {
		t.Fatalf("%+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	env := map[string]string{"NAGARE_LISTEN": ":7000", "NAGARE_LOG_LEVEL": "debug"}
	cases := []struct {
		name  string
		file  string
		env   map[string]string
		flags map[string]string
		want  string // Listen
	}{
		{"default", "", nil, nil, ":8080"},
		{"file", "testdata/good.yaml", nil, nil, "127.0.0.1:9090"},
		{"env over file", "testdata/good.yaml", env, nil, ":7000"},
		{"flag over env", "testdata/good.yaml", env, map[string]string{"listen": ":6000"}, ":6000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Load(c.file, c.flags, func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got.Listen != c.want {
				t.Fatalf("listen = %q, want %q", got.Listen, c.want)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		name  string
		flags map[string]string
		want  string
	}{
		{"key pair", map[string]string{"root-auth-key-id": "keyId-a"}, "must be given together"},
		{"short key", map[string]string{"root-auth-key-id": "keyId-a", "root-auth-key": "secret-x"}, "at least 16"},
		{"secret key", map[string]string{"secret-key": "c2hvcnQ="}, "exactly 32 bytes"},
		{"short password", map[string]string{"root-password": "123"}, "at least 8"},
		{"nats-listen with external", map[string]string{"nats": "nats://x:4222", "nats-listen": ":4222"}, "only applies to the embedded"},
		{"bad size", map[string]string{"max-file-bytes": "-1"}, "is not a size"},
		{"cluster without routes", map[string]string{"nats-cluster": ":6222", "node-name": "n1"}, "go together"},
		{"cluster without a name", map[string]string{"nats-cluster": ":6222", "nats-routes": "nats-route://a:6222"}, "node-name: every node"},
		{"cluster with external", map[string]string{"nats": "nats://x:4222", "nats-cluster": ":6222", "nats-routes": "nats-route://a:6222", "node-name": "n1"}, "only applies to the embedded"},
		{"bad route", map[string]string{"nats-cluster": ":6222", "nats-routes": "http://a:6222", "node-name": "n1"}, "not a nats-route://"},
		{"replicas", map[string]string{"nats-replicas": "7"}, "must be 1 to 5"},
		{"cluster on SQLite", map[string]string{"nats-cluster": ":6222", "nats-routes": "nats-route://a:6222", "node-name": "n1", "files": "s3://b"}, "db: SQLite keeps its data on one node"},
		{"cluster on local files", map[string]string{"nats": "nats://a:4222,nats://b:4222", "db": "postgres://u@h/db"}, "files: local files"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load("", c.flags, noEnv)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	// Secrets never appear in error messages.
	_, err := Load("", map[string]string{"db": "mysql://u:hunter2@h/db", "files": "s3://b?secret=hunter2x"}, noEnv)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("secret leaked or no error: %v", err)
	}
}

// A node of several needs shared state; replicas follow the topology.
func TestClusterSettings(t *testing.T) {
	for _, c := range []struct {
		flags     map[string]string
		clustered bool
		replicas  int
	}{
		{map[string]string{}, false, 1},
		{map[string]string{"nats": "nats://a:4222"}, false, 1},
		{map[string]string{"nats": "nats://a:4222,nats://b:4222", "db": "postgres://u@h/db", "files": "s3://b"}, true, 3},
		{map[string]string{"nats-cluster": ":6222", "nats-routes": "nats-route://a:6222,nats-route://b:6222", "node-name": "n1", "db": "postgres://u@h/db", "files": "azblob://c"}, true, 3},
		{map[string]string{"nats-cluster": ":6222", "nats-routes": "nats-route://a:6222", "node-name": "n1", "db": "postgres://u@h/db", "files": "s3://b", "nats-replicas": "2"}, true, 2},
	} {
		cfg, err := Load("", c.flags, noEnv)
		if err != nil {
			t.Errorf("%v: %v", c.flags, err)
			continue
		}
		if cfg.Clustered() != c.clustered || cfg.Replicas() != c.replicas {
			t.Errorf("%v: clustered %v replicas %d", c.flags, cfg.Clustered(), cfg.Replicas())
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "64KiB": 64 << 10, "10MB": 10_000_000, "1GiB": 1 << 30, "5 B": 5} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
}

func TestPublicBase(t *testing.T) {
	c := Defaults()
	if c.PublicBase() != "http://127.0.0.1:8080" {
		t.Fatal(c.PublicBase())
	}
	c.PublicURL = "https://iot.example.com/"
	if c.PublicBase() != "https://iot.example.com" {
		t.Fatal(c.PublicBase())
	}
}
