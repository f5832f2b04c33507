// Command tlogcheck checks a served keyledger log as a C2SP tlog-tiles client written with Go's
// golang.org/x/mod/sumdb/{note,tlog} (x/mod 0.7.0 as Debian packages it) would: nothing here comes from keyledger.
//
// It fetches the checkpoint note and verifies it with note.NewVerifier(vkey) + note.Open, parses the c2sp body
// (origin, size, base64 root) by hand, reads hash tiles through tlog.TileHashReader (tile height 8, keyledger's
// paths are Go's tile paths without the "8/" height element), fetches every entry bundle of the checkpoint's tree
// and rebuilds the tree from the entries alone (tlog.RecordHash of each event hash, tlog.StoredHashesForRecordHash),
// then checks: the rebuilt root is the signed root; every level-0 hash the TileHashReader returns is the record
// hash of the served entry; every hash tile a client of the checkpoint or of each older size (-sizes) fetches
// (tlog.NewTiles) is byte for byte the tile Go computes (tlog.ReadTileData) from the rebuilt tree; record proofs
// (tlog.ProveRecord/CheckRecord) and tree proofs (tlog.ProveTree/CheckTree) from the tiles verify, and fail for a
// wrong record or root.
//
// Usage: tlogcheck -base http://127.0.0.1:PORT -vkey NAME+ID+KEY [-sizes 1,255,...] [-tamper-tile] [-tamper-note]
// with the bearer token in TLOGCHECK_TOKEN. It prints one JSON line and exits 0 when every check holds, and
// prints "tlogcheck: FAIL: ..." to stderr and exits 1 otherwise.
//
// Build (no module proxy needed): GO111MODULE=off GOPATH=/usr/share/gocode go build -o tlogcheck ./tests/go/tlogcheck
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// server fetches from keyledger with the bearer token.
type server struct {
	base     string
	token    string
	client   *http.Client
	requests int
}

func (s *server) get(path string) ([]byte, error) {
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	s.requests++
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %q", path, resp.Status, body)
	}
	return body, nil
}

// tilePath maps Go's tile path (tile/8/L/N[.p/W]) to keyledger's (/v1/tlog/tile/L/N[.p/W]).
func tilePath(t tlog.Tile) (string, error) {
	if t.H != height || t.L < 0 {
		return "", fmt.Errorf("tile %s: only hash tiles of height %d are served", t.Path(), height)
	}
	prefix := fmt.Sprintf("tile/%d/", height)
	p := t.Path()
	if !strings.HasPrefix(p, prefix) {
		return "", fmt.Errorf("unexpected Go tile path %s", p)
	}
	return "/v1/tlog/tile/" + strings.TrimPrefix(p, prefix), nil
}

// tileReader is the tlog.TileReader over HTTP. With tamper set, one byte of tile 0/000 (any width) is flipped as
// it arrives, as a bad server or a man in the middle would.
type tileReader struct {
	srv    *server
	tamper bool
	cache  map[string][]byte
}

func (r *tileReader) Height() int { return height }

func (r *tileReader) fetch(t tlog.Tile) ([]byte, error) {
	path, err := tilePath(t)
	if err != nil {
		return nil, err
	}
	data, ok := r.cache[path]
	if !ok {
		data, err = r.srv.get(path)
		if err != nil {
			return nil, err
		}
		if r.tamper && t.L == 0 && t.N == 0 && len(data) > 0 {
			data = append([]byte(nil), data...)
			data[len(data)/2] ^= 0x01
		}
		r.cache[path] = data
	}
	if len(data) != t.W*tlog.HashSize {
		return nil, fmt.Errorf("%s: %d bytes, want %d", path, len(data), t.W*tlog.HashSize)
	}
	return data, nil
}

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.fetch(t)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// memory is a tlog.HashReader over stored hashes Go computed itself.
type memory []tlog.Hash

func (m memory) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("stored hash %d not computed (have %d)", x, len(m))
		}
		out[i] = m[x]
	}
	return out, nil
}

// parseBody parses a c2sp tlog-checkpoint body: origin, decimal size, base64 root, optional extension lines.
func parseBody(text string) (origin string, size int64, root tlog.Hash, err error) {
	if !strings.HasSuffix(text, "\n") {
		return "", 0, root, fmt.Errorf("checkpoint body does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return "", 0, root, fmt.Errorf("checkpoint body has %d lines, want at least 3", len(lines))
	}
	origin = lines[0]
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("checkpoint size line %q is not a canonical decimal", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("checkpoint root line %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(root[:], raw)
	return origin, size, root, nil
}

// entries fetches the entry bundles of a tree of `size` entries and returns each entry's data.
func entries(srv *server, size int64) ([][]byte, error) {
	var out [][]byte
	for n := int64(0); n*(1<<height) < size; n++ {
		w := size - n*(1<<height)
		if w > 1<<height {
			w = 1 << height
		}
		t := tlog.Tile{H: height, L: 0, N: n, W: int(w)}
		hashPath, err := tilePath(t)
		if err != nil {
			return nil, err
		}
		path := strings.Replace(hashPath, "/v1/tlog/tile/0/", "/v1/tlog/tile/entries/", 1)
		bundle, err := srv.get(path)
		if err != nil {
			return nil, err
		}
		count := int64(0)
		for len(bundle) > 0 {
			if len(bundle) < 2 {
				return nil, fmt.Errorf("%s: truncated entry length", path)
			}
			l := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+l {
				return nil, fmt.Errorf("%s: truncated entry", path)
			}
			out = append(out, bundle[2:2+l])
			bundle = bundle[2+l:]
			count++
		}
		if count != w {
			return nil, fmt.Errorf("%s: %d entries, want %d", path, count, w)
		}
	}
	return out, nil
}

// samples returns record indexes worth proving in a tree of size n: the ends, tile edges and a few in between.
func samples(n int64) []int64 {
	set := map[int64]bool{}
	for _, i := range []int64{0, 1, n / 3, n / 2, n - 2, n - 1, 254, 255, 256, 257, 65535, 65536} {
		if i >= 0 && i < n {
			set[i] = true
		}
	}
	var out []int64
	for i := range set {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

func main() {
	base := flag.String("base", "", "base URL of the keyledger server")
	vkey := flag.String("vkey", "", "the log's note verifier key (name+id+base64 key)")
	sizesFlag := flag.String("sizes", "", "comma-separated older tree sizes to check as well")
	tamperTile := flag.Bool("tamper-tile", false, "flip one byte of hash tile 0/000 as it is read")
	tamperNote := flag.Bool("tamper-note", false, "alter the checkpoint note's root line before verifying it")
	flag.Parse()
	token := os.Getenv("TLOGCHECK_TOKEN")
	if *base == "" || *vkey == "" || token == "" {
		fail("usage: TLOGCHECK_TOKEN=... tlogcheck -base URL -vkey VKEY [-sizes a,b,...] [-tamper-tile] [-tamper-note]")
	}
	srv := &server{base: strings.TrimSuffix(*base, "/"), token: token, client: &http.Client{Timeout: 30 * time.Second}}

	// The checkpoint note, verified with x/mod's note package.
	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("verifier key %q: %v", *vkey, err)
	}
	msg, err := srv.get("/v1/tlog/checkpoint")
	if err != nil {
		fail("checkpoint: %v", err)
	}
	if *tamperNote {
		lines := strings.SplitN(string(msg), "\n", 4)
		if len(lines) == 4 {
			root := []byte(lines[2])
			if root[0] == 'A' {
				root[0] = 'B'
			} else {
				root[0] = 'A'
			}
			lines[2] = string(root)
			msg = []byte(strings.Join(lines, "\n"))
		}
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint note does not verify with %s: %v", verifier.Name(), err)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != verifier.Name() || n.Sigs[0].Hash != verifier.KeyHash() {
		fail("checkpoint note: unexpected verified signatures %+v", n.Sigs)
	}
	origin, size, root, err := parseBody(n.Text)
	if err != nil {
		fail("%v", err)
	}
	if origin != verifier.Name() {
		fail("checkpoint origin %q is not the verifier key's name %q", origin, verifier.Name())
	}
	if size < 1 {
		fail("checkpoint of an empty tree")
	}
	tree := tlog.Tree{N: size, Hash: root}

	sizes := []int64{}
	if *sizesFlag != "" {
		for _, f := range strings.Split(*sizesFlag, ",") {
			s, err := strconv.ParseInt(f, 10, 64)
			if err != nil || s < 1 || s > size {
				fail("size %q is not in 1..%d (the checkpoint's size)", f, size)
			}
			sizes = append(sizes, s)
		}
	}

	tr := &tileReader{srv: srv, tamper: *tamperTile, cache: map[string][]byte{}}
	tiled := tlog.TileHashReader(tree, tr)

	// The tree hash through the tiles (the TileHashReader authenticates what it reads against the signed root).
	th, err := tlog.TreeHash(size, tiled)
	if err != nil {
		fail("tree hash of %d from tiles: %v", size, err)
	}
	if th != root {
		fail("tree hash of %d from tiles is %v, the checkpoint says %v", size, th, root)
	}

	// Go's own tree, from the served entries alone.
	data, err := entries(srv, size)
	if err != nil {
		fail("entry bundles: %v", err)
	}
	var mem memory
	records := make([]tlog.Hash, len(data))
	for i, d := range data {
		if len(d) != tlog.HashSize {
			fail("entry %d is %d bytes, not an event hash", i, len(d))
		}
		records[i] = tlog.RecordHash(d)
		hashes, err := tlog.StoredHashesForRecordHash(int64(i), records[i], mem)
		if err != nil {
			fail("stored hashes of record %d: %v", i, err)
		}
		mem = append(mem, hashes...)
	}
	if int64(len(mem)) != tlog.StoredHashCount(size) {
		fail("computed %d stored hashes, want %d", len(mem), tlog.StoredHashCount(size))
	}
	own, err := tlog.TreeHash(size, mem)
	if err != nil {
		fail("tree hash from entries: %v", err)
	}
	if own != root {
		fail("the tree Go built from the %d served entries has root %v, the checkpoint says %v", size, own, root)
	}

	// Every level-0 hash, read through the TileHashReader, is the record hash of the served entry.
	level0 := make([]int64, size)
	for i := range level0 {
		level0[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := tiled.ReadHashes(level0)
	if err != nil {
		fail("level-0 hashes through the TileHashReader: %v", err)
	}
	for i, h := range leaves {
		if h != records[i] {
			fail("level-0 tile hash %d is %v, RecordHash(entry %d) is %v", i, h, i, records[i])
		}
	}

	// Every tile a client of each size fetches is the tile Go computes, byte for byte.
	checked := append([]int64{}, sizes...)
	checked = append(checked, size)
	compared := map[string]bool{}
	for _, s := range checked {
		for _, t := range tlog.NewTiles(height, 0, s) {
			path, err := tilePath(t)
			if err != nil {
				fail("%v", err)
			}
			if compared[path] {
				continue
			}
			want, err := tlog.ReadTileData(t, mem)
			if err != nil {
				fail("computing %s: %v", path, err)
			}
			got, err := tr.fetch(t)
			if err != nil {
				fail("size %d: %v", s, err)
			}
			if !bytes.Equal(got, want) {
				fail("size %d: served tile %s differs from the tile Go computes", s, path)
			}
			compared[path] = true
		}
	}

	// Record and tree proofs, for the checkpoint and each older size, from tiles authenticated by each size's root.
	recordProofs, treeProofs := 0, 0
	for _, s := range checked {
		rootS, err := tlog.TreeHash(s, mem)
		if err != nil {
			fail("tree hash of %d: %v", s, err)
		}
		fromTiles, err := tlog.TreeHash(s, tiled)
		if err != nil || fromTiles != rootS {
			fail("tree hash of %d through the checkpoint's tiles: %v %v, want %v", s, fromTiles, err, rootS)
		}
		tiledS := tlog.TileHashReader(tlog.Tree{N: s, Hash: rootS}, tr)
		if h, err := tlog.TreeHash(s, tiledS); err != nil || h != rootS {
			fail("tree hash of %d through its own (partial) tiles: %v %v, want %v", s, h, err, rootS)
		}
		if s < size {
			p, err := tlog.ProveTree(size, s, tiled)
			if err != nil {
				fail("ProveTree(%d, %d): %v", size, s, err)
			}
			if err := tlog.CheckTree(p, size, root, s, rootS); err != nil {
				fail("CheckTree(%d, %d): %v", size, s, err)
			}
			bad := rootS
			bad[0] ^= 1
			if tlog.CheckTree(p, size, root, s, bad) == nil {
				fail("CheckTree(%d, %d) accepted a wrong old root", size, s)
			}
			treeProofs++
		}
		for _, i := range samples(s) {
			for _, c := range []struct {
				n    int64
				hash tlog.Hash
				r    tlog.HashReader
			}{{s, rootS, tiledS}, {size, root, tiled}} {
				p, err := tlog.ProveRecord(c.n, i, c.r)
				if err != nil {
					fail("ProveRecord(%d, %d): %v", c.n, i, err)
				}
				if err := tlog.CheckRecord(p, c.n, c.hash, i, records[i]); err != nil {
					fail("CheckRecord(%d, %d): %v", c.n, i, err)
				}
				other := tlog.RecordHash([]byte("not the event"))
				if tlog.CheckRecord(p, c.n, c.hash, i, other) == nil {
					fail("CheckRecord(%d, %d) accepted a wrong record", c.n, i)
				}
				recordProofs++
			}
		}
	}

	summary, _ := json.Marshal(map[string]interface{}{
		"ok":             true,
		"origin":         origin,
		"size":           size,
		"root":           root.String(),
		"sizes":          checked,
		"tiles_compared": len(compared),
		"entries":        len(data),
		"record_proofs":  recordProofs,
		"tree_proofs":    treeProofs,
		"requests":       srv.requests,
	})
	fmt.Println(string(summary))
}
