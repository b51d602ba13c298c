/**
 * The floor under bench:checkin: a bare `node:https` server with the same TLS setup (mTLS requested,
 * the agent CA trusted) that reads each body and answers 204 to a PUT and 304 to a GET, doing nothing
 * else. What Phasewise reaches beside it says how much the transport itself costs on this core.
 * Usage: node checkin-baseline-server.js DATA_DIR (prints the port).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';

const dir = process.argv[2]!;
const server = createServer({
  key: readFileSync(join(dir, 'tls', 'key.pem')), cert: readFileSync(join(dir, 'tls', 'cert.pem')),
  ca: readFileSync(join(dir, 'agent-ca', 'ca.cert.pem')), requestCert: true, rejectUnauthorized: false,
}, (req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method === 'PUT') res.writeHead(204).end();
    else res.writeHead(304, { etag: '"1"' }).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`port ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
