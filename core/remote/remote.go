package remote

import (
	"bytes"
	"compress/flate"
	_ "embed"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
)

//go:embed first_stage.py
var firstStageSource string

//go:embed core.py
var coreSource string

//go:embed ext.py
var extSource string

// Loader is the `python -c` program: it drops the current directory from
// sys.path before its first import (python -c searches it first, and under
// sudo it belongs to the calling user), then runs the first stage from
// argv[1].
const Loader = "import sys;sys.path=[p for p in sys.path if p];import binascii,os,select,zlib;" +
	"exec(zlib.decompress(binascii.a2b_base64(sys.argv[1]),-15))"

// Marker1 and Marker2 are written by the first stage: the first before it
// reads the preamble, the second once the core has all of it. They cannot
// be mistaken for banners, prompts or shell errors.
var (
	Marker1 = []byte("\n(spore-boot-1)\n")
	Marker2 = []byte("(spore-boot-2)\n")
)

// Module is one embedded Python source and its sizes.
type Module struct {
	Name       string
	Original   int
	Minified   int
	Compressed int
}

var (
	once        sync.Once
	stageB64    string
	preamble    []byte
	preambleMin int // length of the minified preamble
)

func build() {
	fs := Minify(firstStageSource)
	fsz := deflate([]byte(fs))
	stageB64 = base64.StdEncoding.EncodeToString(fsz)
	// ext.py rides inside the core as a string literal, compiled only when
	// a request needs it: compiling it at every boot would cost more than
	// sending it.
	ext := Minify(extSource)
	core := Minify(coreSource)
	const slot = "\nEXT = ''\n"
	if !strings.Contains(core, slot) {
		panic("remote: core.py has no EXT slot")
	}
	core = strings.Replace(core, slot, "\nEXT = "+pyString(ext)+"\n", 1)
	preamble = deflate([]byte(core))
	preambleMin = len(core)
}

func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// FirstStage returns the static base64 argument of the boot command.
func FirstStage() string { once.Do(build); return stageB64 }

// Preamble returns the compressed core, as sent after the first marker.
// The caller must not modify it.
func Preamble() []byte { once.Do(build); return preamble }

// Modules returns the embedded modules' sizes, for `spore sizes`. The
// separate compressions are made here, not at every start.
func Modules() []Module {
	once.Do(build)
	fs, core, ext := Minify(firstStageSource), Minify(coreSource), Minify(extSource)
	return []Module{
		{"first_stage", len(firstStageSource), len(fs), len(deflate([]byte(fs)))},
		{"core", len(coreSource), len(core), len(deflate([]byte(core)))},
		{"ext", len(extSource), len(ext), len(deflate([]byte(ext)))},
		{"preamble (core+ext)", len(coreSource) + len(extSource), preambleMin, len(preamble)},
	}
}

// BootArgv returns the boot command for a context named name, run by the
// interpreter python. -S skips the site module: the first stage and the
// core need nothing from site-packages, it halves the interpreter's start
// (a pyenv build's .pth files cost ~30 ms), and no sitecustomize or
// usercustomize of the account runs. The core imports site only when
// remote Python code is run.
func BootArgv(python, name string) []string {
	return []string{python, "-Sc", Loader, FirstStage(), name, strconv.Itoa(len(Preamble()))}
}

// Minify strips comments, docstrings and most indentation from Python
// source while keeping every statement on its original line, so remote
// tracebacks point at the right line of the embedded source. It handles the
// subset of Python the embedded sources are written in: no comment after
// code on the same line, docstrings on lines of their own.
func Minify(src string) string {
	lines := strings.Split(src, "\n")
	out := make([]string, len(lines))
	widths := []int{0} // indentation widths of the open blocks
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		if t == "" || strings.HasPrefix(t, "#") || isDocstring(t) {
			continue
		}
		w := len(l) - len(t)
		for len(widths) > 1 && widths[len(widths)-1] > w {
			widths = widths[:len(widths)-1]
		}
		if w > widths[len(widths)-1] {
			widths = append(widths, w)
		}
		out[i] = strings.Repeat(" ", len(widths)-1) + t
	}
	// Trailing blank lines add nothing.
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

func isDocstring(t string) bool {
	return len(t) >= 6 && strings.HasPrefix(t, `"""`) && strings.HasSuffix(t, `"""`)
}

// pyString quotes ASCII source as one Python string literal, the same in
// Python 2 and 3.
func pyString(src string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(src) + "'"
}
