package scenario

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseTargetURLHidesSecrets: ParseTargetURL's errors never show a
// password or a secret query value, whether the URL parses or not, and do
// not wrap net/url's error (which holds the URL as written).
func TestParseTargetURLHidesSecrets(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://admin:S3CRETPW@127.0.0.1:x1", `invalid URL "http://admin:xxxxx@127.0.0.1:x1": invalid port ":x1" after host`},
		{"http://admin:S3CRETPW@127.0.0.1 :80", `invalid URL "http://admin:xxxxx@127.0.0.1 :80": invalid character " " in host name`},
		{"http://admin:S3CRETPW@127.0.0.1:99999", `URL "http://admin:xxxxx@127.0.0.1:99999" has an invalid port`},
		{"http://admin:S3CRETPW@", `URL "http://admin:xxxxx@" has no host`},
		{"ftp://tok:S3CRETPW@x", `URL "ftp://tok:xxxxx@x": scheme "ftp" is not supported (want http, https or builtin:echo)`},
		// a password with a bad escape: net/url quotes the escape
		{"http://admin:S3%zzCRETPW@h/", `invalid URL "http://admin:xxxxx@h/": invalid URL escape "xxxxx"`},
		// a '#' in the password cuts the authority short: net/url quotes ":S3"
		{"http://admin:S3#CRETPW@h/", `invalid URL "http://admin:xxxxx@h/": invalid port "xxxxx" after host`},
		// without a scheme, user:password@host parses as scheme "admin"
		{"admin:S3CRETPW@h", `URL "admin:xxxxx@h": scheme "admin" is not supported (want http, https or builtin:echo)`},
		{"http://h:x1/?api_key=S3CRETPW&x=1", `invalid URL "http://h:x1/?api_key=xxxxx&x=1": invalid port ":x1" after host`},
		{"http://h:99999/?token=S3CRETPW#access_token=S3CRETPW", `URL "http://h:99999/?token=xxxxx#access_token=xxxxx" has an invalid port`},
		{"http://h\x7f/?sig=S3CRETPW", `invalid URL "http://h\x7f/?sig=xxxxx": net/url: invalid control character in URL`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, _, err := ParseTargetURL(tt.url)
			if err == nil {
				t.Fatal("parsed")
			}
			if strings.Contains(err.Error(), "S3") || strings.Contains(err.Error(), "CRET") {
				t.Errorf("error shows the secret: %v", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %v\nwant\n  %s", err, tt.want)
			}
			for e := err; e != nil; {
				u, ok := e.(interface{ Unwrap() error })
				if !ok {
					break
				}
				e = u.Unwrap()
				if e != nil && strings.Contains(e.Error(), "S3") {
					t.Errorf("wrapped error %T shows the secret: %v", e, e)
				}
			}
		})
	}
}

func TestMaskURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:9001/", "http://127.0.0.1:9001/"},
		{"http://admin:pw@127.0.0.1:9001/?api_key=q", "http://admin:xxxxx@127.0.0.1:9001/?api_key=xxxxx"},
		{"http://admin@h/", "http://admin@h/"}, // a user name alone is kept, as net/url keeps it
		{"http://admin:@h/", "http://admin:xxxxx@h/"},
		{"http://a:p@ss@h/x@y", "http://a:xxxxx@h/x@y"},
		{"http://a:p/ss@h", "http://a:xxxxx@h"},                                        // unparseable: a password may hold '/'
		{"http://deploy:Zm9v/YmFy@api.example/x", "http://deploy:xxxxx@api.example/x"}, // base64
		{"http://host:8080/a@b", "http://host:8080/a@b"},                               // parses: '@' in the path
		{"http://h/?x=1&Access-Token=t&sig=s&signature=&page=2", "http://h/?x=1&Access-Token=xxxxx&sig=xxxxx&signature=&page=2"},
		{"http://h/?X-Amz-Signature=abc&my_secret_id=1&q", "http://h/?X-Amz-Signature=xxxxx&my_secret_id=xxxxx&q"},
		{"http://h/?api%5Fkey=k", "http://h/?api%5Fkey=xxxxx"},
		{"http://h/#id_token=t", "http://h/#id_token=xxxxx"},
		{"builtin:echo", "builtin:echo"},
		{"//u:p@h/", "//u:xxxxx@h/"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "proxy-authorization": true, "Cookie": true, "Set-Cookie": true, "X-Api-Key": true,
		"X-Auth-Token": true, "X-Client-Secret": true, "DB-Password": true, "api_key": true, "apikey": true,
		"access_token": true, "sig": true, "Signature": true, "x-amz-credential": true, "PHPSESSID": true,
		"Content-Type": false, "Accept": false, "page": false, "X-Request-Id": false, "Host": false, "": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %t, want %t", name, got, want)
		}
	}
}

// TestRewriteShownValue: the plan shows a rewrite that sets a credential
// with its literals masked, keeping the auth scheme and env() names.
func TestRewriteShownValue(t *testing.T) {
	tests := []struct {
		action     RewriteAction
		name, path string
		src, want  string
	}{
		{SetHeader, "Authorization", "", `"Bearer S3CRET"`, `"Bearer xxxxx"`},
		{SetHeader, "authorization", "", `'Basic S3CRET'`, `'Basic xxxxx'`},
		{SetHeader, "Authorization", "", `"Bearer " + env("STAGING_TOKEN")`, `"Bearer " + env("STAGING_TOKEN")`},
		{SetHeader, "Authorization", "", `"Bearer " + "S3CRET"`, `"Bearer " + "xxxxx"`},
		{SetHeader, "Cookie", "", `"session=S3CRET; theme=dark"`, `"xxxxx"`},
		{SetHeader, "X-Api-Key", "", "`S3CRET`", "`xxxxx`"},
		{SetHeader, "X-Auth-Token", "", `req.header("X-Old") ?? "S3CRET"`, `req.header("X-Old") ?? "xxxxx"`},
		{SetHeader, "Authorization", "", `"Bearer S3\"CRET"`, `"Bearer xxxxx"`},
		{SetHeader, "Authorization", "", `"S3CRET`, `"xxxxx`},
		{SetHeader, "Authorization", "", `"Bearer "`, `"Bearer "`},
		{SetHeader, "Authorization", "", `myenv("S3CRET")`, `myenv("xxxxx")`},
		{SetHeader, "Authorization", "", `req.param ( "auth" ) ?? 'S3CRET'`, `req.param ( "auth" ) ?? 'xxxxx'`},
		{SetQuery, "access_token", "", `"S3CRET"`, `"xxxxx"`},
		{SetJSON, "", "$.user.password", `"S3CRET"`, `"xxxxx"`},
		{SetJSON, "", "$['client_secret']", `"S3CRET"`, `"xxxxx"`},
		{SetHeader, "X-Tenant", "", `"acme"`, `"acme"`},
		{SetHeader, "Referer", "", `"http://u:S3CRET@h/?token=S3CRET"`, `"http://u:xxxxx@h/?token=xxxxx"`},
		{SetQuery, "page", "", `"2"`, `"2"`},
		{SetJSON, "", "$.name", `"x"`, `"x"`},
		{SetPath, "", "", `"/v2" + req.path`, `"/v2" + req.path`},
	}
	for _, tt := range tests {
		t.Run(string(tt.action)+" "+tt.name+tt.path+" "+tt.src, func(t *testing.T) {
			rw := &Rewrite{Action: tt.action, Name: tt.name, JSONPath: tt.path, Value: &Expr{Source: tt.src}}
			if got := rw.ShownValue(); got != tt.want {
				t.Errorf("ShownValue() = %s, want %s", got, tt.want)
			}
		})
	}
	if got := (&Rewrite{Action: RemoveHeader, Name: "Authorization"}).ShownValue(); got != "" {
		t.Errorf("remove-header shows %q", got)
	}
}

func TestMaskExpr(t *testing.T) {
	tests := []struct {
		src    string
		secret bool
		want   string
	}{
		{`"Bearer " + env("TOKEN")`, true, `"Bearer " + env("TOKEN")`},
		{`"Bearer abc.def"`, true, `"Bearer xxxxx"`},
		{`"/login?token=Hunter2&next=/home"`, false, `"/login?token=xxxxx&next=/home"`},
		{`"http://u:pw@h/x?api_key=k1"`, false, `"http://u:xxxxx@h/x?api_key=xxxxx"`},
		{`"/plain/path"`, false, `"/plain/path"`},
		{`req.header("Authorization") == "Bearer abc"`, false, `req.header("Authorization") == "Bearer abc"`},
	}
	for _, tt := range tests {
		if got := MaskExpr(tt.src, tt.secret); got != tt.want {
			t.Errorf("MaskExpr(%s, %v) = %s, want %s", tt.src, tt.secret, got, tt.want)
		}
	}
	if got := MaskCondition(`req.header("Authorization") == "Bearer abc"`); got != `req.header("Authorization") == "Bearer xxxxx"` {
		t.Errorf("MaskCondition = %s", got)
	}
}

// TestParseTargetURLHostPort: a host:port without a scheme (as gor's
// --output-http takes it) is told so, with the URL to write, whatever
// net/url makes of it (a scheme "staging", or no parse at all).
func TestParseTargetURLHostPort(t *testing.T) {
	for _, hp := range []string{"staging:8080", "127.0.0.1:8080", "[::1]:8080", "shop.example.com:443"} {
		_, _, err := ParseTargetURL(hp)
		want := fmt.Sprintf("URL %q has no scheme: write http://%s (or https://)", hp, hp)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", hp, err, want)
		}
	}
	if _, _, err := ParseTargetURL("builtin:echo"); err != nil {
		t.Errorf("builtin:echo: %v", err)
	}
}
