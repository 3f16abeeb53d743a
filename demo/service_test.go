package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestService_Answers(t *testing.T) {
	srv := httptest.NewServer(&Service{Version: "v7", Instance: "i1"})
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || a.Version != "v7" || !a.OK || resp.Header.Get("X-Demo-Version") != "v7" {
		t.Fatalf("answer %d %+v", resp.StatusCode, a)
	}
}

func TestService_FailsItsShare(t *testing.T) {
	srv := httptest.NewServer(&Service{Version: "v3", ErrorRate: 0.2})
	defer srv.Close()
	failed := 0
	const n = 2000
	for range n {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 500 {
			failed++
		}
	}
	if failed < n*15/100 || failed > n*25/100 {
		t.Fatalf("%d of %d failed; want about 20%%", failed, n)
	}
}

func TestParseErrorRate(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "0.2": 0.2, "20%": 0.2, "1": 1} {
		if got, err := ParseErrorRate(in); err != nil || got != want {
			t.Errorf("ParseErrorRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "150%", "-0.1"} {
		if _, err := ParseErrorRate(bad); err == nil || !strings.Contains(err.Error(), "error rate") {
			t.Errorf("ParseErrorRate(%q) = %v; want an error", bad, err)
		}
	}
}
