package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Command
		err  string // substring of the error, "" for success
	}{
		{name: "subscribe", in: `{"id":1,"op":"subscribe","channel":"news"}`,
			want: Command{ID: 1, HasID: true, Op: OpSubscribe, OpName: "subscribe", Channel: "news"}},
		{name: "publish", in: ` { "id" : 3 , "op" : "publish" , "channel" : "chat" , "data" : {"a":[1,2,{"b":null}]} } `,
			want: Command{ID: 3, HasID: true, Op: OpPublish, OpName: "publish", Channel: "chat", Data: []byte(`{"a":[1,2,{"b":null}]}`)}},
		{name: "data null", in: `{"op":"publish","channel":"c","data":null}`,
			want: Command{Op: OpPublish, OpName: "publish", Channel: "c", Data: []byte("null")}},
		{name: "ping without id", in: `{"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}},
		{name: "refresh", in: `{"id":9,"op":"refresh","token":"a.b\/c"}`,
			want: Command{ID: 9, HasID: true, Op: OpRefresh, OpName: "refresh", Token: "a.b/c"}},
		{name: "exclude_self", in: `{"op":"publish","channel":"c","data":1,"exclude_self":true}`,
			want: Command{Op: OpPublish, OpName: "publish", Channel: "c", Data: []byte("1"), ExcludeSelf: true}},
		{name: "unknown fields skipped", in: `{"x":{"y":["}",{"z":"\""}]},"op":"presence","n":-1.5e+3,"channel":"a:b","t":true,"f":false}`,
			want: Command{Op: OpPresence, OpName: "presence", Channel: "a:b"}},
		{name: "escapes", in: `{"\u006fp":"unsub\u0073cribe","channel":"caf\u00e9\ud83d\ude00\"\\"}`,
			want: Command{Op: OpUnsubscribe, OpName: "unsubscribe", Channel: "café😀\"\\"}},
		{name: "negative id", in: `{"id":-9223372036854775808,"op":"ping"}`,
			want: Command{ID: -9223372036854775808, HasID: true, Op: OpPing, OpName: "ping"}},
		{name: "max id", in: `{"id":9223372036854775807,"op":"ping"}`,
			want: Command{ID: 9223372036854775807, HasID: true, Op: OpPing, OpName: "ping"}},
		{name: "id null", in: `{"id":null,"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}},
		{name: "last duplicate wins", in: `{"op":"ping","op":"publish","channel":"a","channel":"b"}`,
			want: Command{Op: OpPublish, OpName: "publish", Channel: "b"}},
		{name: "unknown op", in: `{"id":5,"op":"dance"}`, want: Command{ID: 5, HasID: true, OpName: "dance"}, err: `unknown op "dance"`},
		{name: "missing op", in: `{"id":5}`, want: Command{ID: 5, HasID: true}, err: "missing"},
		{name: "op not string", in: `{"id":5,"op":1}`, want: Command{ID: 5, HasID: true}, err: `"op" must be`},
		{name: "id fraction", in: `{"id":1.5,"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}, err: `"id" must be an integer`},
		{name: "id exponent", in: `{"id":1e3,"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}, err: "integer"},
		{name: "id string", in: `{"id":"1","op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}, err: "integer"},
		{name: "id too big", in: `{"id":9223372036854775808,"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}, err: "range"},
		{name: "id too small", in: `{"id":-9223372036854775809,"op":"ping"}`, want: Command{Op: OpPing, OpName: "ping"}, err: "range"},
		{name: "channel not string", in: `{"id":2,"op":"subscribe","channel":7}`, want: Command{ID: 2, HasID: true, Op: OpSubscribe, OpName: "subscribe"}, err: "channel"},
		{name: "channel with space", in: `{"id":2,"op":"subscribe","channel":"a b"}`,
			want: Command{ID: 2, HasID: true, Op: OpSubscribe, OpName: "subscribe", Channel: "a b"}, err: "invalid channel"},
		{name: "channel empty", in: `{"op":"subscribe","channel":""}`, want: Command{Op: OpSubscribe, OpName: "subscribe"}, err: "invalid channel"},
		{name: "exclude_self type", in: `{"op":"ping","exclude_self":1}`, want: Command{Op: OpPing, OpName: "ping"}, err: "exclude_self"},
		{name: "syntax error after id", in: `{"id":7,"op":"publish","data":{]}`, want: Command{ID: 7, HasID: true, Op: OpPublish, OpName: "publish"}, err: "invalid JSON"},
		{name: "syntax error before id", in: `{"op":x,"data":"}{","id": 8}`, want: Command{ID: 8, HasID: true}, err: "invalid JSON"},
		{name: "nested id is not the id", in: `{"data":{"id":8},"op":}`, err: "invalid JSON"},
		{name: "not an object", in: `[1]`, err: "not a JSON object"},
		{name: "empty", in: ``, err: "invalid JSON"},
		{name: "trailing", in: `{"op":"ping"} {}`, want: Command{Op: OpPing, OpName: "ping"}, err: "after"},
		{name: "trailing junk", in: `{"op":"ping"}x`, want: Command{Op: OpPing, OpName: "ping"}, err: "invalid JSON"},
		{name: "invalid utf8 in data", in: "{\"op\":\"publish\",\"channel\":\"c\",\"data\":\"\xff\"}", want: Command{Op: OpPublish, OpName: "publish", Channel: "c"}, err: "invalid JSON"},
		{name: "control char in string", in: "{\"op\":\"pi\nng\"}", err: "invalid JSON"},
		{name: "empty object", in: `{}`, err: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Command
			c.Token = "stale" // DecodeCommand must reset c
			err := DecodeCommand([]byte(tt.in), &c)
			if tt.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.err != "" {
				var de *DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one containing %q", err, tt.err)
				}
			}
			if c.ID != tt.want.ID || c.HasID != tt.want.HasID || c.Op != tt.want.Op || c.OpName != tt.want.OpName ||
				(tt.err == "" && (c.Channel != tt.want.Channel || string(c.Data) != string(tt.want.Data) ||
					c.Token != tt.want.Token || c.ExcludeSelf != tt.want.ExcludeSelf)) {
				t.Fatalf("got %+v (data %s), want %+v (data %s)", c, c.Data, tt.want, tt.want.Data)
			}
		})
	}
}

func TestValidJSON(t *testing.T) {
	valid := []string{`0`, `-0`, `1.5e-3`, `-12E+2`, `"x"`, `"\u00e9\n"`, `true`, `false`, `null`, `[]`, `{}`, ` [1, "a", {"b": [null]}] `,
		`{"a":{"b":{"c":[[[]]]}}}`, `"é😀"`, strings.Repeat("[", 10000) + strings.Repeat("]", 10000)}
	invalid := []string{``, ` `, `01`, `1.`, `.5`, `1e`, `+1`, `-`, `tru`, `nul`, `"a`, `"\x"`, `"\u12"`, "\"\x01\"", "\"\xff\"",
		`[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `[1 2]`, `1 2`, `{"a":1}}`, `NaN`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001)}
	for _, s := range valid {
		if !ValidJSON([]byte(s)) || !json.Valid([]byte(s)) {
			t.Errorf("%.40q: want valid", s)
		}
	}
	for _, s := range invalid {
		if ValidJSON([]byte(s)) {
			t.Errorf("%.40q: want invalid", s)
		}
	}
}

func TestValidChannel(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"news", true}, {"a:b/c-d_e.f@g#1", true}, {"café", true}, {"频道", true}, {"😀", true}, {strings.Repeat("x", 255), true},
		{"", false}, {strings.Repeat("x", 256), false}, {"a b", false}, {"a\tb", false}, {"a\x00", false}, {"\x7f", false},
		{"a\u00a0b", false}, {"a\u2028", false}, {"\u200b", false}, {"\xff", false}, {"a\xc3", false}, {"\u3000", false},
	}
	for _, tt := range tests {
		if got := ValidChannel(tt.in); got != tt.want {
			t.Errorf("ValidChannel(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEncoders(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"push", AppendPush(nil, "news", []byte(`{"a":1}`)), `{"channel":"news","data":{"a":1}}`},
		{"push escaped channel", AppendPush(nil, `a"b`, []byte(`1`)), `{"channel":"a\"b","data":1}`},
		{"user push", AppendUserPush(nil, []byte(`"hi"`)), `{"data":"hi"}`},
		{"ok", AppendOK(nil, 42), `{"id":42,"ok":true}`},
		{"ok negative", AppendOK(nil, -1), `{"id":-1,"ok":true}`},
		{"result", AppendResult(nil, 4, []byte(`{"users":["u1","u2"]}`)), `{"id":4,"ok":true,"result":{"users":["u1","u2"]}}`},
		{"error", AppendError(nil, 7, true, 403, "forbidden"), `{"id":7,"error":{"code":403,"message":"forbidden"}}`},
		{"error without id", AppendError(nil, 0, false, 400, `bad "x"`), `{"error":{"code":400,"message":"bad \"x\""}}`},
		{"appends", AppendOK([]byte("xx"), 1), `xx{"id":1,"ok":true}`},
		{"string escapes", AppendString(nil, "a\"\\\n\r\t\x01\x1f\u2028\u2029é😀\xffz</>&"),
			`"a\"\\\n\r\t\u0001\u001f\u2028\u2029é😀\ufffdz</>&"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Fatalf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

// TestAppendStringRoundTrip checks AppendString against encoding/json.
func TestAppendStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "\x00\x7f\b\f", "\u2028x", "é\xff\xfe", strings.Repeat("ab\"", 50)} {
		b := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil || !ValidJSON(b) {
			t.Fatalf("%q encoded as %s: %v", s, b, err)
		}
		if want := string([]rune(s)); back != want { // one U+FFFD per invalid byte
			t.Fatalf("%q round-tripped to %q", s, back)
		}
	}
}
