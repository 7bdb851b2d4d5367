/*
 * libFuzzer target for common/tg_jsonrpc.c: decode arbitrary bytes as one JSON-RPC message.
 * A message classified as valid must satisfy the invariants the MCP client relies on.
 */
#include "tg_jsonrpc.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  tg_jsonrpc_msg msg;
  if (tg_jsonrpc_decode((const char *)data, size, &msg) == 0) {
    if (msg.kind == TG_JSONRPC_REQUEST && (!msg.method || !msg.id))
      abort();
    if (msg.kind == TG_JSONRPC_RESPONSE && !msg.is_error && !msg.result)
      abort();
  }
  tg_jsonrpc_msg_clear(&msg);
  return 0;
}
