package remote

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestBootArgvLayout(t *testing.T) {
	argv := BootArgv("/usr/bin/python3", "web1,sudo:root")
	if len(argv) != 6 || argv[0] != "/usr/bin/python3" || argv[1] != "-Sc" || argv[2] != Loader || argv[4] != "web1,sudo:root" {
		t.Fatalf("argv = %q", argv)
	}
	if n, _ := strconv.Atoi(argv[5]); n != len(Preamble()) {
		t.Fatalf("length %s, preamble %d", argv[5], len(Preamble()))
	}
	// The first stage is raw deflate (no zlib header) of the minified source.
	raw, err := base64.StdEncoding.DecodeString(argv[3])
	if err != nil {
		t.Fatal(err)
	}
	src, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil || string(src) != Minify(firstStageSource) {
		t.Fatalf("first stage does not inflate to its source: %v", err)
	}
	// The loader drops the current directory before any import of its own.
	if i, j := strings.Index(Loader, "sys.path="), strings.Index(Loader, "import binascii"); i < 0 || j < i {
		t.Fatalf("loader imports before cleaning sys.path: %s", Loader)
	}
}

func TestPreambleInflatesToCore(t *testing.T) {
	src, err := io.ReadAll(flate.NewReader(bytes.NewReader(Preamble())))
	if err != nil || string(src) != Minify(coreSource) {
		t.Fatalf("preamble does not inflate to the minified core: %v", err)
	}
	if len(Preamble()) > 10000 {
		t.Errorf("preamble is %d bytes, over the 10,000 budget", len(Preamble()))
	}
}

func TestMinifyKeepsLines(t *testing.T) {
	in := "# comment\nimport os\n\n\nclass A(object):\n    \"\"\"Doc.\"\"\"\n    def f(self):\n        x = [1,\n             2]\n        return x\n"
	out := Minify(in)
	if got, want := strings.Count(out, "\n"), strings.Count(strings.TrimRight(in, "\n"), "\n")+1; got != want {
		t.Fatalf("%d lines, want %d:\n%s", got, want, out)
	}
	lines := strings.Split(out, "\n")
	if lines[1] != "import os" || lines[4] != "class A(object):" || lines[6] != " def f(self):" || lines[9] != "  return x" {
		t.Fatalf("minified:\n%q", lines)
	}
}
