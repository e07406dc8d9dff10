package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
)

const usageHeader = `roost: a WebSocket pub/sub server.

Usage: roost [flags]

Every flag may also be set by the environment variable shown with it, or by
a line "name = value" in the file given to --config. A flag on the command
line wins over the environment, which wins over the file, which wins over
the default. Limits of 0 mean unlimited unless said otherwise. Durations
take units (500ms, 10s, 1m). docs/operations.md explains each setting.
`

// printUsage writes --help: every flag, grouped, with its default and its
// environment variable.
func printUsage(w io.Writer) {
	fs := newFlagSet(&options{})
	fmt.Fprint(w, usageHeader)
	for _, sec := range sections {
		fmt.Fprintf(w, "\n%s:\n", sec.title)
		for _, name := range sec.names {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			kind, usage := flag.UnquoteUsage(f)
			head := "  --" + f.Name
			if kind != "" {
				head += " " + kind
			}
			def := f.DefValue
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(w, "%s\n      %s\n      default: %s   env: %s\n", head, usage, def, envName(f.Name))
		}
	}
}

// printConfig writes the effective settings, one per line in config-file
// syntax, with where each value came from. Secrets are redacted.
func printConfig(w io.Writer, o *options) {
	for _, sec := range sections {
		fmt.Fprintf(w, "# %s\n", sec.title)
		for _, name := range sec.names {
			if name == "print-config" {
				continue
			}
			f := o.fs.Lookup(name)
			if f == nil {
				continue
			}
			v := f.Value.String()
			if secretFlags[name] && v != "" {
				v = "(redacted)"
			}
			if name == "redis-url" {
				v = redactURL(v)
			}
			src := o.sources[name]
			if src == "" {
				src = "default"
			}
			fmt.Fprintf(w, "%s = %q  # %s\n", name, v, src)
		}
	}
}

// redactURL hides the password of a redis:// URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return strings.Replace(u.String(), "redacted", "(redacted)", 1)
}
