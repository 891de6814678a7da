package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlCall is one curl command of the README.
type curlCall struct {
	method, url, body string
	header            http.Header
}

// readmeCurls returns the curl commands of the README's walk-through, in
// order, with continuation lines joined.
func readmeCurls(t *testing.T) []curlCall {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, walk, ok := strings.Cut(string(b), "\n## Walk-through\n")
	if !ok {
		t.Fatal("README.md has no '## Walk-through' section")
	}
	walk, _, _ = strings.Cut(walk, "\n## ")
	var calls []curlCall
	inSh, line := false, ""
	sc := bufio.NewScanner(strings.NewReader(walk))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(l, "```"):
			inSh = false
			continue
		case !inSh:
			continue
		}
		if strings.HasSuffix(l, `\`) {
			line += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		line += l
		if words := shellWords(t, line); len(words) > 0 && words[0] == "curl" {
			calls = append(calls, parseCurl(t, words))
		}
		line = ""
	}
	return calls
}

// shellWords splits a command line with single and double quotes (no
// escapes or expansions: the README does not use them).
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in README command: %s", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

func parseCurl(t *testing.T, words []string) curlCall {
	c := curlCall{method: http.MethodGet, header: http.Header{}}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-s", "-S", "-i":
		case "-w":
			i++
		case "-X":
			i++
			c.method = words[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(words[i], ":")
			c.header.Set(k, strings.TrimSpace(v))
		case "-d":
			i++
			c.body = words[i]
			if c.method == http.MethodGet {
				c.method = http.MethodPost
			}
		default:
			if !strings.HasPrefix(w, "http://") {
				t.Fatalf("README curl: unknown argument %q", w)
			}
			c.url = w
		}
	}
	return c
}

// TestReadmeWalkthrough runs the README's curl commands against a server
// and checks what the README says they answer.
func TestReadmeWalkthrough(t *testing.T) {
	needRedisServer(t)
	calls := readmeCurls(t)
	if len(calls) != 4 {
		t.Fatalf("want the 4 curl commands of the walk-through, found %d", len(calls))
	}
	wf, err := filepath.Abs("workflows")
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, t.TempDir(), nil, "--workflows", wf)
	do := func(c curlCall) (int, map[string]any) {
		t.Helper()
		if !strings.HasPrefix(c.url, "http://127.0.0.1:8080/") {
			t.Fatalf("README curl URL %s is not on the default address", c.url)
		}
		req, err := http.NewRequest(c.method, s.url+strings.TrimPrefix(c.url, "http://127.0.0.1:8080"), strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = c.header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return resp.StatusCode, v
	}

	if code, v := do(calls[0]); code != http.StatusAccepted || v["id"] != "booking-1" {
		t.Fatalf("start: %d %v", code, v)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, v := do(calls[1])
		cs, _ := v["customStatus"].(map[string]any)
		if code == http.StatusAccepted && v["runtimeStatus"] == "Running" && cs["discount"] == 20.0 && cs["discountTimeout"] == 60.0 &&
			cs["bookingUrl"] == "https://example.com/book/user1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the discount: %d %v", code, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := do(calls[2]); code != http.StatusAccepted {
		t.Fatalf("raise: %d", code)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, v := do(calls[3])
		cs, _ := v["customStatus"].(map[string]any)
		if code == http.StatusOK && v["runtimeStatus"] == "Completed" && v["output"] == true &&
			cs["message"] == "Thank you for confirming your booking." {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instance did not complete as the README says: %d %v", code, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop(t)
}
