/*
 * tg_err: descriptions and names for the TG_E* codes. A code outside the table maps to
 * "unknown error", so a stray errno or foreign code never indexes out of bounds.
 */
#include "tg_err.h"

static const struct {
  int code;
  const char *name;
  const char *text;
} table[] = {
    {TG_OK, "ok", "success"},
    {TG_ENOMEM, "out_of_memory", "out of memory"},
    {TG_EINVAL, "invalid", "invalid argument or malformed input"},
    {TG_EIO, "io_error", "network or file I/O failed"},
    {TG_ENOTFOUND, "not_found", "not found"},
    {TG_ETIMEDOUT, "timeout", "timed out"},
    {TG_EPROTO, "protocol_error", "peer broke its protocol"},
    {TG_EDB, "database_error", "database error"},
    {TG_EBUSY, "database_busy", "database busy"},
    {TG_ETOOBIG, "too_large", "size limit exceeded"},
    {TG_ECONFLICT, "conflict", "conflict"},
    {TG_EHTTP, "http_error", "peer answered an HTTP error"},
    {TG_ECANCELED, "canceled", "canceled"},
    {TG_EAUTH, "auth_rejected", "credentials rejected"},
    {TG_ESTATE, "bad_state", "wrong state for this operation"},
    {TG_ERATELIMIT, "rate_limited", "rate limited"},
    {TG_EEGRESS, "egress_denied", "destination refused by the egress policy"},
};

const char *tg_strerror(int err)
{
  for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].code == err)
      return table[i].text;
  return "unknown error";
}

const char *tg_errname(int err)
{
  for (unsigned i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].code == err)
      return table[i].name;
  return "unknown";
}
