// The Node.js benchmark function (examples/bigimage).
//
// At start it requires a few dozen of the image's npm packages, as an API
// service would, then serves HTTP on 0.0.0.0:$FC_SERVER_PORT (default 9000):
//
//   GET /                  what was required and how long it took
//   GET /run?seconds=N     the run phase: reads files of the image in a
//                          fixed pseudo-random order for N seconds and
//                          answers {"Bytes": read, "Seconds": elapsed}
'use strict';
const t0 = process.hrtime.bigint();
const fs = require('fs');
const http = require('http');

const modules = [
  'express', 'lodash', 'moment', 'moment-timezone', 'aws-sdk', '@aws-sdk/client-s3',
  '@aws-sdk/client-dynamodb', 'googleapis', 'typescript', '@babel/core', 'rxjs',
  'mongoose', 'sequelize', 'pg', 'mysql2', 'ioredis', 'graphql', 'three', 'mathjs',
  'date-fns', 'axios', 'zod', 'joi', 'ajv', 'handlebars', 'ejs', 'marked',
  'highlight.js', 'cheerio', 'winston', 'pino', 'yargs', 'jsonwebtoken', 'uuid',
  'socket.io', 'fastify', 'koa', 'kafkajs', 'amqplib', 'nodemailer', 'knex',
  'xml2js', 'yup', 'immutable', 'ramda', 'bluebird', 'react', 'react-dom/server',
];
const loaded = {};
for (const m of modules) {
  loaded[m] = require(m);
}
const initSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

// shuffle is a fixed-seed Fisher-Yates (mulberry32), so every run reads
// the same files in the same order.
function shuffle(a) {
  let s = 1;
  const rnd = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function run(seconds) {
  const start = Date.now();
  const deadline = start + seconds * 1000;
  // The image's files, listed when it was made: walking them here would
  // take longer than reading them.
  const files = shuffle(fs.readFileSync('/app/files.txt', 'utf8').split('\n').filter(Boolean));
  const buf = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  for (const p of files) {
    if (Date.now() >= deadline) break;
    let fd;
    try {
      fd = fs.openSync(p, 'r');
      let n;
      while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) total += n;
    } catch {
      // unreadable files are skipped
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return { Bytes: total, Seconds: (Date.now() - start) / 1000 };
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  let body;
  if (u.pathname.endsWith('/run')) {
    body = run(Number(u.searchParams.get('seconds') || '10'));
  } else {
    body = { modules: Object.keys(loaded).length, initSeconds, node: process.version };
  }
  const data = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
});
const port = Number(process.env.FC_SERVER_PORT || 9000);
server.listen(port, '0.0.0.0', () => {
  console.log(`required ${modules.length} modules in ${initSeconds.toFixed(2)}s; listening on 0.0.0.0:${port}`);
});
