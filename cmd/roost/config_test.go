package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes a file in the test's temporary directory.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSectionsListEveryFlagOnce(t *testing.T) {
	fs := newFlagSet(&options{})
	seen := map[string]int{}
	for _, sec := range sections {
		for _, n := range sec.names {
			if fs.Lookup(n) == nil {
				t.Errorf("section %q lists %q, which is no flag", sec.title, n)
			}
			seen[n]++
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if seen[f.Name] != 1 {
			t.Errorf("flag --%s listed %d times in sections, want once", f.Name, seen[f.Name])
		}
	})
}

func TestHelpListsEveryFlag(t *testing.T) {
	code, out, _ := runRoost(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		i := strings.Index(out, "\n  --"+f.Name+" ")
		if i < 0 {
			i = strings.Index(out, "\n  --"+f.Name+"\n")
		}
		if i < 0 {
			t.Errorf("--help does not list --%s", f.Name)
			return
		}
		entry := out[i:]
		if j := strings.Index(entry[1:], "\n  --"); j > 0 {
			entry = entry[:j+1]
		}
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		if !strings.Contains(entry, "default: "+def+" ") || !strings.Contains(entry, "env: "+envName(f.Name)) {
			t.Errorf("--help entry of --%s lacks its default %s or env %s:\n%s", f.Name, def, envName(f.Name), entry)
		}
	})
}

func TestInvalidValueExits2NamingTheFlag(t *testing.T) {
	badConf := writeFile(t, "bad.conf", "# roost\naddr = 127.0.0.1:0\ndrain-rate = fast\n")
	unknownConf := writeFile(t, "unknown.conf", "max-conections = 3\n")
	privPEM := writeFile(t, "priv.pem", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIE2ZyD2o3EjR6rWr4kZC3V5pWUP2R1bNNBW5k2vXrmlR\n-----END PRIVATE KEY-----\n")
	cases := []struct {
		name string
		env  []string
		args []string
		want []string // substrings of stderr
	}{
		{"flag not a number", nil, []string{"--max-connections", "abc"}, []string{"--max-connections", `"abc" is not an integer`}},
		{"flag negative", nil, []string{"--max-message-bytes", "-1"}, []string{"--max-message-bytes", "negative"}},
		{"duration without unit", nil, []string{"--handshake-timeout", "5"}, []string{"--handshake-timeout", "duration"}},
		{"zero timeout", nil, []string{"--shutdown-timeout", "0s"}, []string{"--shutdown-timeout", "positive"}},
		{"env value", []string{"ROOST_IDLE_TIMEOUT=soon"}, nil, []string{"--idle-timeout", "ROOST_IDLE_TIMEOUT"}},
		{"file value", nil, []string{"--config", badConf}, []string{"--drain-rate", "bad.conf:3"}},
		{"file unknown key", nil, []string{"--config", unknownConf}, []string{"--config", `unknown setting "max-conections"`}},
		{"missing config file", nil, []string{"--config", "/nonexistent/roost.conf"}, []string{"--config"}},
		{"log format", nil, []string{"--log-format", "xml"}, []string{"--log-format", "text or json"}},
		{"addr", nil, []string{"--addr", "localhost"}, []string{"--addr", "host:port"}},
		{"short secret", nil, []string{"--auth-secret", "short"}, []string{"--auth-secret", "32"}},
		{"two keys", nil, []string{"--auth-secret", strings.Repeat("k", 32), "--auth-public-key", "x.pem"}, []string{"--auth-secret", "not both"}},
		{"missing key file", nil, []string{"--auth-public-key", "/nonexistent.pem"}, []string{"--auth-public-key"}},
		{"private key given", nil, []string{"--auth-public-key", privPEM}, []string{"--auth-public-key", "private key"}},
		{"tls half", nil, []string{"--tls-cert", "c.pem"}, []string{"--tls-cert", "--tls-key"}},
		{"tls files", nil, []string{"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, []string{"--tls-cert"}},
		{"proxies", nil, []string{"--trusted-proxies", "10.0.0/8"}, []string{"--trusted-proxies", "10.0.0/8"}},
		{"origins", nil, []string{"--allowed-origins", "https://a.example/path"}, []string{"--allowed-origins"}},
		{"redis url", nil, []string{"--redis-url", "http://x"}, []string{"--redis-url"}},
		{"redis both", nil, []string{"--redis-url", "redis://x:1", "--redis-cluster", "a:1"}, []string{"--redis-cluster", "not both"}},
		{"unknown flag", nil, []string{"--max-conns", "3"}, []string{"--max-conns"}},
		{"stray argument", nil, []string{"serve"}, []string{`"serve"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runRoost(t, tc.env, append([]string{"--addr", "127.0.0.1:0"}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestPrecedenceFlagEnvFileDefault(t *testing.T) {
	conf := writeFile(t, "roost.conf", `# every layer sets drain-rate; lower layers set more
drain-rate = 1
max-connections = 10
inbound-rate = 7
api-key = "file key # not a comment"
`)
	env := []string{"ROOST_DRAIN_RATE=2", "ROOST_MAX_CONNECTIONS=20", "ROOST_CONFIG=" + conf}
	code, out, stderr := runRoost(t, env, "--print-config", "--drain-rate", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`drain-rate = "3"  # flag`,
		`max-connections = "20"  # env ROOST_MAX_CONNECTIONS`,
		`inbound-rate = "7"  # file ` + conf + `:4`,
		`api-key = "(redacted)"  # file ` + conf + `:5`,
		`idle-timeout = "1m0s"  # default`,
		`config = "` + conf + `"  # env ROOST_CONFIG`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
}

// TestParseConfig checks merging in-process, where each case is cheap.
func TestParseConfig(t *testing.T) {
	conf := writeFile(t, "r.conf", "max-connections = 5\nping-interval = 0s\nclient-publish = chat:, room:\n")
	cases := []struct {
		name    string
		args    []string
		environ []string
		check   func(t *testing.T, o *options)
	}{
		{"defaults", nil, nil, func(t *testing.T, o *options) {
			if o.Addr != "127.0.0.1:8080" || o.MaxConnections != 0 || o.ConnRatePerIP != 0 || o.ShutdownTimeout != 30*time.Second ||
				o.MaxMessageBytes != 64<<10 || o.InboundRate != 100 || o.RedisPrefix != "roost" || o.PresenceTTL != 30*time.Second {
				t.Errorf("unexpected defaults: %+v", o)
			}
			if o.tokenMode() {
				t.Error("default is token mode")
			}
		}},
		{"file", []string{"--config", conf}, nil, func(t *testing.T, o *options) {
			if o.MaxConnections != 5 || o.PingInterval != 0 || o.ClientPublish != "chat:, room:" {
				t.Errorf("file not applied: %+v", o)
			}
		}},
		{"env beats file", []string{"--config", conf}, []string{"ROOST_MAX_CONNECTIONS=6"}, func(t *testing.T, o *options) {
			if o.MaxConnections != 6 || o.sources["max-connections"] != "env ROOST_MAX_CONNECTIONS" {
				t.Errorf("max-connections %d from %s", o.MaxConnections, o.sources["max-connections"])
			}
		}},
		{"flag beats env", []string{"--max-connections=7"}, []string{"ROOST_MAX_CONNECTIONS=6"}, func(t *testing.T, o *options) {
			if o.MaxConnections != 7 {
				t.Errorf("max-connections %d", o.MaxConnections)
			}
		}},
		{"last env entry wins", nil, []string{"ROOST_DRAIN_RATE=1", "ROOST_DRAIN_RATE=9"}, func(t *testing.T, o *options) {
			if o.DrainRate != 9 {
				t.Errorf("drain-rate %v", o.DrainRate)
			}
		}},
		{"token mode", nil, []string{"ROOST_AUTH_SECRET=" + strings.Repeat("s", 32)}, func(t *testing.T, o *options) {
			if !o.tokenMode() {
				t.Error("secret from env does not switch to token mode")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := parseConfig(tc.args, tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestParseConfigWarnsAboutUnknownEnv(t *testing.T) {
	_, warnings, err := parseConfig(nil, []string{"ROOST_MAX_CONNECTION=3", "ROOST_ADDR=127.0.0.1:1", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "ROOST_MAX_CONNECTION ") {
		t.Errorf("warnings = %q, want one about ROOST_MAX_CONNECTION", warnings)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		environ []string
		flag    string
	}{
		{"burst without rate", []string{"--conn-burst-per-ip", "5"}, nil, "conn-burst-per-ip"},
		{"nan", []string{"--inbound-rate", "NaN"}, nil, "inbound-rate"},
		{"prefix brace", nil, []string{"ROOST_REDIS_PREFIX=a{b}"}, "redis-prefix"},
		{"cluster addr", []string{"--redis-cluster", "a:1,b"}, nil, "redis-cluster"},
		{"level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"port", []string{"--addr", "127.0.0.1:99999"}, nil, "addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseConfig(tc.args, tc.environ)
			var ce *configError
			if !errors.As(err, &ce) || ce.flag != tc.flag {
				t.Fatalf("err = %v, want a configError about --%s", err, tc.flag)
			}
		})
	}
}

func TestConfigFileSyntax(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"no equals", "addr 127.0.0.1:1\n", "want `key = value`"},
		{"duplicate", "addr = a:1\naddr = b:2\n", "given twice"},
		{"nested config", "config = other.conf\n", "cannot name another"},
		{"bad quote", `api-key = "abc` + "\n", "badly quoted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "c.conf", tc.content)
			_, _, err := parseConfig([]string{"--config", path}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--config") {
				t.Fatalf("err = %v, want one naming --config and saying %q", err, tc.want)
			}
		})
	}
}
