// Preloaded with `node --require` so a peer that calls listen(port) without a host binds to
// 127.0.0.1 (or $HOST) only. server-everything has no host option and would otherwise listen on
// every interface; our tests and demo must stay on loopback.
'use strict';
const net = require('net');
const host = process.env.HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, host);
  } else if (args[0] && typeof args[0] === 'object' && !('path' in args[0])) {
    args[0] = Object.assign({}, args[0], { host });
  }
  return listen.apply(this, args);
};
