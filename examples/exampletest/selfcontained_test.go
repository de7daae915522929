package exampletest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root, two directories up from this package.
const repoRoot = "../.."

// The examples are meant to be copied into another module: their non-test code imports only the
// standard library, the SDK's public packages and other modules, never an internal package or this
// test helper.
func TestExamplesUseOnlyPublicPackages(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "examples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() || filepath.Base(dir) == "exampletest" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, imp := range file.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if strings.Contains(path, "/internal/") || strings.HasSuffix(path, "/internal") ||
					strings.HasPrefix(path, "github.com/wxkf/wxkf/examples/") {
					t.Errorf("%s imports %s: examples must use only public packages", f, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no example source found")
	}
}

// The code and docs read on their own: nothing outside the repository is referred to. The one
// exception is the published-bodies test, which reads optional samples from beside the checkout.
func TestNoReferenceOutsideTheRepository(t *testing.T) {
	allowed := filepath.Join("kf", "apisamples_test.go")
	n := 0
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".go" && ext != ".md" {
			return nil
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if rel == allowed || rel == filepath.Join("examples", "exampletest", "selfcontained_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, bad := range []string{"../shared", "wecom-kf-api.md"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s refers to %q, outside the repository", rel, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("only %d files read: is %s the module root?", n, repoRoot)
	}
}
