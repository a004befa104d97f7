// Command fakeweir stands in for `weir serve` in weirtest's own tests: it
// takes the same flags, listens on --listen, answers /readyz on
// --http-listen, counts its starts in the data directory and exits on
// SIGTERM. Flags after the standard ones change how
// it misbehaves.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "fakeweir: usage: fakeweir serve [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	listen := fs.String("listen", "", "Kafka listener")
	httpListen := fs.String("http-listen", "", "HTTP listener")
	failStart := fs.Bool("fail-start", false, "exit 1 before listening")
	termExit := fs.Int("term-exit", 0, "exit status on SIGTERM")
	ignoreTerm := fs.Bool("ignore-term", false, "ignore SIGTERM")
	fs.Parse(os.Args[2:])

	fmt.Printf("fakeweir: serve data-dir=%s listen=%s http=%s env=%s\n",
		*dataDir, *listen, *httpListen, os.Getenv("FAKEWEIR_NOTE"))
	if *failStart {
		fmt.Fprintln(os.Stderr, "fakeweir: failing on purpose")
		os.Exit(1)
	}
	starts := filepath.Join(*dataDir, "starts")
	n := 0
	if b, err := os.ReadFile(starts); err == nil {
		n, _ = strconv.Atoi(string(b))
	}
	if err := os.WriteFile(starts, []byte(strconv.Itoa(n+1)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "fakeweir:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeweir:", err)
		os.Exit(1)
	}
	if *httpListen != "" {
		hl, err := net.Listen("tcp", *httpListen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeweir:", err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
		go http.Serve(hl, mux)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	<-sig
	fmt.Println("fakeweir: SIGTERM")
	os.Exit(*termExit)
}
