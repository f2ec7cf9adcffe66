package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A collection is a test collection: documents, queries and which documents are
// relevant to each query (binary relevance).
type collection struct {
	Name    string
	Docs    []doc
	Queries []evalQuery
	Qrels   map[string]map[string]bool // query id → relevant document ids
}

type doc struct {
	ID, Title, Text string
}

type evalQuery struct {
	ID, Text string
}

// findCollections returns the collection directories under root: root itself when
// it is one, else each of its subdirectories that is one, by name.
func findCollections(root string) ([]string, error) {
	if layout(root) != "" {
		return []string{root}, nil
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		if p := filepath.Join(root, e.Name()); e.IsDir() && layout(p) != "" {
			dirs = append(dirs, p)
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s holds no test collection (Cranfield's cran.all.1400 or BEIR's corpus.jsonl)", root)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// layout names the format of the collection in dir, or "" if it holds none.
func layout(dir string) string {
	switch {
	case exists(filepath.Join(dir, "cran.all.1400")):
		return "cranfield"
	case exists(filepath.Join(dir, "corpus.jsonl")):
		return "beir"
	}
	return ""
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadCollection reads the collection in dir, in either layout. Queries without a
// relevant document are left out: no system can score on them.
func loadCollection(dir string) (*collection, error) {
	c := &collection{Name: filepath.Base(dir)}
	var err error
	switch layout(dir) {
	case "cranfield":
		err = c.readCranfield(dir)
	case "beir":
		err = c.readBEIR(dir)
	default:
		return nil, fmt.Errorf("%s: not a test collection", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	judged := c.Queries[:0]
	for _, q := range c.Queries {
		if len(c.Qrels[q.ID]) > 0 {
			judged = append(judged, q)
		}
	}
	c.Queries = judged
	if len(c.Docs) == 0 || len(c.Queries) == 0 {
		return nil, fmt.Errorf("%s: no documents or no judged queries", c.Name)
	}
	return c, nil
}

// readBEIR reads BEIR's layout: corpus.jsonl, queries.jsonl and qrels/test.tsv.
func (c *collection) readBEIR(dir string) error {
	err := readJSONL(filepath.Join(dir, "corpus.jsonl"), func(line []byte) error {
		var d struct{ ID, Title, Text string }
		if err := json.Unmarshal(line, &struct {
			ID    *string `json:"_id"`
			Title *string `json:"title"`
			Text  *string `json:"text"`
		}{&d.ID, &d.Title, &d.Text}); err != nil {
			return err
		}
		title, text := oneLine(d.Title), oneLine(d.Text)
		if text == "" {
			text = title
		}
		if text != "" {
			c.Docs = append(c.Docs, doc{ID: d.ID, Title: title, Text: text})
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = readJSONL(filepath.Join(dir, "queries.jsonl"), func(line []byte) error {
		var q struct {
			ID   string `json:"_id"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(line, &q); err != nil {
			return err
		}
		c.Queries = append(c.Queries, evalQuery{ID: q.ID, Text: oneLine(q.Text)})
		return nil
	})
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(dir, "qrels", "test.tsv"))
	if err != nil {
		return err
	}
	c.Qrels = map[string]map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) != 3 {
			continue
		}
		score, err := strconv.Atoi(strings.TrimSpace(f[2]))
		if err != nil {
			if i == 0 {
				continue // the header
			}
			return fmt.Errorf("qrels line %d: %q is not a score", i+1, f[2])
		}
		if score > 0 {
			if c.Qrels[f[0]] == nil {
				c.Qrels[f[0]] = map[string]bool{}
			}
			c.Qrels[f[0]][f[1]] = true
		}
	}
	return nil
}

func readJSONL(path string, each func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		if err := each(sc.Bytes()); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}

// readCranfield reads cran.all.1400, cran.qry and cranqrel (see the collection's
// README: queries are numbered by position, codes 1–4 are relevant).
func (c *collection) readCranfield(dir string) error {
	recs, err := readRecords(filepath.Join(dir, "cran.all.1400"))
	if err != nil {
		return err
	}
	for _, r := range recs {
		text := strings.TrimSpace(r.fields["W"])
		if text == "" {
			text = strings.TrimSpace(r.fields["T"])
		}
		if text == "" {
			continue // 471 and 995 are empty
		}
		c.Docs = append(c.Docs, doc{ID: r.id, Title: oneLine(r.fields["T"]), Text: text})
	}
	if recs, err = readRecords(filepath.Join(dir, "cran.qry")); err != nil {
		return err
	}
	for i, r := range recs {
		c.Queries = append(c.Queries, evalQuery{ID: strconv.Itoa(i + 1), Text: oneLine(r.fields["W"])})
	}
	b, err := os.ReadFile(filepath.Join(dir, "cranqrel"))
	if err != nil {
		return err
	}
	c.Qrels = map[string]map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		q, err1 := strconv.Atoi(f[0])
		code, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		if code >= 1 && code <= 4 {
			id := strconv.Itoa(q)
			if c.Qrels[id] == nil {
				c.Qrels[id] = map[string]bool{}
			}
			c.Qrels[id][f[1]] = true
		}
	}
	return nil
}

type record struct {
	id     string
	fields map[string]string
}

// readRecords parses Cranfield's ".I id" records of ".T", ".A", ".B" and ".W" fields.
func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	field := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, ".I ") {
			id := strings.TrimSpace(line[3:])
			if n, err := strconv.Atoi(id); err == nil {
				id = strconv.Itoa(n)
			}
			recs = append(recs, record{id: id, fields: map[string]string{}})
			field = ""
			continue
		}
		if len(line) == 2 && line[0] == '.' && strings.Contains("TABW", line[1:]) {
			field = line[1:]
			continue
		}
		if len(recs) > 0 && field != "" {
			recs[len(recs)-1].fields[field] += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, errors.New(filepath.Base(path) + ": no .I records")
	}
	return recs, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
