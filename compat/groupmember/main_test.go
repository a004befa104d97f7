package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	base := []string{"-group", "g", "-topic", "t", "-name", "m1"}
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults to franz", base, true},
		{"sarama static", append([]string{"-client", "sarama", "-instance", "i1"}, base...), true},
		{"unknown client", append([]string{"-client", "kafka-go"}, base...), false},
		{"no group", []string{"-topic", "t", "-name", "m1"}, false},
		{"no name", []string{"-group", "g", "-topic", "t"}, false},
		{"stray argument", append(base, "extra"), false},
		{"unknown flag", append(base, "-nope"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("parse(%q) = %v, want ok %t", tt.args, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errUsage) {
				t.Fatalf("error %v is not errUsage", err)
			}
		})
	}
	if code := run([]string{"-group", "g"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("usage error exit %d, want 2", code)
	}
}

func TestReporterLines(t *testing.T) {
	var b bytes.Buffer
	r := &reporter{w: &b, name: `m"1`}
	r.partitions("assigned", 3, []int32{2, 0})
	r.partitions("revoked", 3, nil) // nothing to report
	r.record(0, 41)
	r.commit(0, 42)
	want := `{"m":"m\"1","ev":"assigned","gen":3,"ps":[0,2]}
{"m":"m\"1","ev":"rec","p":0,"o":41}
{"m":"m\"1","ev":"commit","p":0,"o":42}
`
	if got := b.String(); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(b.String(), "\n") != 3 {
		t.Fatal("one line per event")
	}
}
