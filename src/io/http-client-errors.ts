// Node's HTTP server answers a malformed request, headers over its limit or a request that arrives too slowly by
// itself, with an empty body. Both servers (the labeling app, the OpenAI-compatible API) answer them instead with a
// JSON body that says why, in their own error shape.
import type { Server } from 'node:http';

/** Answers Node's own 400 / 408 / 431 with `body(message)` as JSON; a reset connection is just closed. */
export function answerClientErrors(server: Server, body: (message: string) => unknown, headerLimit = ''): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const [status, reason, message]: [number, string, string] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', `the request headers are over the size limit${headerLimit ? ` (${headerLimit})` : ''}`]
        : err.code === 'HPE_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'the request took too long to arrive']
          : [400, 'Bad Request', `malformed HTTP request (${err.code ?? err.message})`];
    const text = JSON.stringify(body(message));
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  });
}
