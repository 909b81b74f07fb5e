// Reference GPT-2 tokenisation from npm gpt-3-encoder's JS encoder (Encoder.js), an
// implementation independent of attnlab's C++ tokenizer; tests/data compares against it.
//   node scripts/ref/gpt2_reference_ids.js <gpt-3-encoder package dir> < strings.json
// stdin: a JSON array of strings. stdout: a JSON array of {"ids": [...], "pieces": [...]} where
// pieces are the pre-tokens of GPT-2's pattern (the same regex Encoder.js uses; node's RegExp
// supports \p{L} and \p{N} with the u flag).
const fs = require('fs');
const path = require('path');
const { encode } = require(path.resolve(process.argv[2], 'Encoder.js'));
const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const strings = JSON.parse(fs.readFileSync(0, 'utf-8'));
const out = strings.map((s) => ({ ids: encode(s), pieces: Array.from(s.matchAll(pat), (m) => m[0]) }));
process.stdout.write(JSON.stringify(out) + '\n');
