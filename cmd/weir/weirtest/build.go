package weirtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// mainPackage is the import path of the weir command.
const mainPackage = "github.com/weir-broker/weir/cmd/weir"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of the weir binary the brokers run: WEIR_BINARY
// when set, else one built with `go build` on first use (once per test
// binary; later calls return the same result).
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("weirtest: %s: %w", EnvBinary, err)
		}
		return p, nil
	}
	buildOnce.Do(func() { buildPath, buildErr = build() })
	return buildPath, buildErr
}

// build compiles the weir command into a cache directory keyed by the
// module it is built from. The output goes to a private file first and is
// renamed into place, so test binaries building at the same time (go test
// runs packages in parallel) never execute a partly written file, and a
// process still running an older build keeps its own copy.
func build() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("weirtest: build weir: go tool not found (set %s to a prebuilt binary): %w", EnvBinary, err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("weirtest: go env GOMOD: %w", err)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(gomod))))
	dir := filepath.Join(os.TempDir(), "weirtest-"+strconv.Itoa(os.Getuid()), hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("weirtest: build weir: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("weirtest: build weir: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "weir")
	cmd := exec.Command(goTool, "build", "-o", out, mainPackage)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("weirtest: go build %s: %w\n%s", mainPackage, err, msg)
	}
	final := filepath.Join(dir, "weir")
	if err := os.Rename(out, final); err != nil {
		return "", fmt.Errorf("weirtest: build weir: %w", err)
	}
	return final, nil
}
