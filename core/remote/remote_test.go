package remote

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sporehq/spore/internal/testenv"
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
	want := strings.Replace(Minify(coreSource), "\nEXT = ''\n", "\nEXT = "+pyString(Minify(extSource))+"\n", 1)
	if err != nil || string(src) != want {
		t.Fatalf("preamble does not inflate to the minified core with ext.py in its slot: %v", err)
	}
	// Line numbers of the core are kept: the slot is one line.
	if got, want := strings.Count(string(src), "\n"), strings.Count(Minify(coreSource), "\n"); got != want {
		t.Errorf("preamble has %d lines, the core %d", got, want)
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

// Every supported interpreter compiles the sources as they are sent: the
// first stage, the core with ext.py in its slot, and ext.py itself.
func TestSourcesCompileOnEveryInterpreter(t *testing.T) {
	dir := t.TempDir()
	src, _ := io.ReadAll(flate.NewReader(bytes.NewReader(Preamble())))
	files := map[string]string{"first_stage.py": Minify(firstStageSource), "preamble.py": string(src), "ext.py": Minify(extSource)}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, py := range testenv.Pythons(t) {
		for name := range files {
			out, err := exec.Command(py.Path, "-Sc", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", filepath.Join(dir, name)).CombinedOutput()
			if err != nil {
				t.Errorf("%s does not compile %s: %v\n%s", py.Name, name, err, out)
			}
		}
	}
}
