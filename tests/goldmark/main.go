// Render markdown from stdin to HTML on stdout as Gitea and Forgejo do: goldmark with
// the GFM extensions (tables, strikethrough, linkify, task lists), footnotes and
// definition lists, raw HTML kept so a test sees any of it. One document per run, or, with
// -lines, one JSON string per input line (a document each), one JSON string per output line.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

func main() {
	md := goldmark.New(
		goldmark.WithExtensions(extension.GFM, extension.Footnote, extension.DefinitionList),
		goldmark.WithRendererOptions(html.WithUnsafe()),
	)
	if len(os.Args) > 1 && os.Args[1] == "-lines" {
		in := bufio.NewReader(os.Stdin)
		out := bufio.NewWriter(os.Stdout)
		for {
			line, err := in.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				var doc string
				if jerr := json.Unmarshal(line, &doc); jerr != nil {
					fmt.Fprintln(os.Stderr, "not a JSON string:", jerr)
					os.Exit(2)
				}
				var buf bytes.Buffer
				if rerr := md.Convert([]byte(doc), &buf); rerr != nil {
					fmt.Fprintln(os.Stderr, rerr)
					os.Exit(1)
				}
				enc, _ := json.Marshal(buf.String())
				out.Write(enc)
				out.WriteByte('\n')
				out.Flush()
			}
			if err != nil {
				return
			}
		}
	}
	src, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := md.Convert(src, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
