/**
 * The scheduled-events endpoint (src/agent/imds-server.ts) is open to every local process. A POST whose
 * body is cut off (the client goes away) made reading it throw, and the unhandled rejection ended the
 * whole agent. The server runs in a child process here, so that ending it cannot end the test runner.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

const MODULE = pathToFileURL(join(import.meta.dirname, '..', 'src', 'agent', 'imds-server.js')).href;
const SERVER = `
const { ImdsServer } = await import(${JSON.stringify(MODULE)});
const events = { DocumentIncarnation: 7, Events: [] };
const port = await new ImdsServer({ port: 0, events: () => events, approve: async () => {} }).start();
process.stdout.write(port + '\\n');
`;

function cutPost(port: number, head: string): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(head);
      setTimeout(() => {
        sock.destroy();
        resolve();
      }, 100);
    });
    sock.on('error', () => resolve());
  });
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metadata/scheduledevents', headers: { Metadata: 'true' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('R83: a POST cut off mid-body, or mid-headers, leaves the agent\'s scheduled-events endpoint running (the agent ended with ECONNRESET)', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (c: string) => resolve(Number(c.trim())));
      child.once('exit', (code) => reject(new Error(`the server ended (${code}): ${stderr}`)));
    });
    const head = 'POST /metadata/scheduledevents HTTP/1.1\r\nHost: 127.0.0.1\r\nMetadata: true\r\nContent-Type: application/json\r\n';
    await cutPost(port, `${head}Content-Length: 100\r\n\r\n{"StartReq`);
    await cutPost(port, `${head}Transfer-Encoding: chunked\r\n\r\n5\r\n{"Sta\r\n`);
    await cutPost(port, head);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(child.exitCode, null, `the endpoint's process ended: ${stderr}`);
    const r = await get(port);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { DocumentIncarnation: 7, Events: [] });
    assert.doesNotMatch(stderr, /ECONNRESET|Error/);
  } finally {
    child.kill('SIGKILL');
  }
});
