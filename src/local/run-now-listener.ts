import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_BODY_BYTES, type RunNowRequest, type RunNowResponse } from '../launch/run-now';

/**
 * The local stack's stand-in for the run-now function URL: a loopback HTTP listener that hands each request
 * to the same handler, shaped as a function URL delivers it (lower-case header names, the body as text).
 */
export async function startRunNowListener(
  handle: (request: RunNowRequest) => Promise<RunNowResponse>,
  onError: (error: Error) => void,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Kept only up to just over the limit: the handler refuses it, and a large body costs nothing.
      if (size <= MAX_BODY_BYTES + 1) chunks.push(chunk);
    });
    req.on('end', () => {
      const headers: Record<string, string | undefined> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        headers[name] = Array.isArray(value) ? value.join(',') : value;
      }
      handle({ method: req.method ?? 'GET', headers, body: Buffer.concat(chunks).toString('utf8') })
        .then((response) => {
          res.writeHead(response.statusCode, response.headers).end(response.body);
        })
        .catch((error: unknown) => {
          onError(error as Error);
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"internal error"}');
        });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/run-now`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
