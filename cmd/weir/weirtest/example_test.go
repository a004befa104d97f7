package weirtest_test

import (
	"fmt"
	"net"

	"github.com/weir-broker/weir/cmd/weir/weirtest"
)

// Example starts a real `weir serve` (built from this module) and connects
// to its Kafka port. In a test, use weirtest.Start(t) instead: it fails the
// test on error and cleans up by itself.
func Example() {
	b, err := weirtest.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	conn.Close()
	fmt.Println("broker accepts connections")

	if err := b.Stop(); err != nil {
		fmt.Println("stop:", err)
		return
	}
	fmt.Println("stopped cleanly")
	// Output:
	// broker accepts connections
	// stopped cleanly
}
