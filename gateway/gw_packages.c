/*
 * gw_packages: the gateway's side of Code nodes' packages (README "Code nodes").
 *
 * At start-up the gateway probes, once and in the background, which top-level python modules
 * the sandbox's interpreter (TOOLGATE_SANDBOX_PYTHON) can import: tg_sandbox_probe_packages runs
 * it under bubblewrap exactly as a Code node would, and keeps the set for the process. The
 * workflow routes then refuse (422) a Code node that names a package outside that set, or that
 * is javascript when no interpreter is configured (tg_workflow_check_code; the pure validator
 * knows nothing of the machine). Until the probe has answered, and for good when it failed
 * (python or bubblewrap missing), packages are not checked: the definition is accepted and the
 * fact logged, and such a node fails when it runs (code_error or sandbox_unavailable).
 */
#include "gw.h"

#include "tg_sandbox.h"
#include "tg_workflow.h"

static void on_probed(void *arg, int err)
{
  if (err != 0)
    tg_warn("code_packages_unchecked", "{s:s, s:s}", "reason", "probe failed", "error",
            tg_errname(err));
}

void gw_packages_start(gw_app *app)
{
  int rc = tg_sandbox_probe_packages(app->loop, app->cfg.sandbox_python, on_probed, app);
  if (rc != 0)
    tg_warn("code_packages_unchecked", "{s:s, s:s}", "reason", "probe not started", "error",
            tg_errname(rc));
}

json_t *gw_packages_check(gw_app *app, const json_t *definition)
{
  tg_workflow_code_env env = {.javascript = app->cfg.sandbox_node != NULL,
                              .packages_available = tg_sandbox_packages_available};
  int unknown = 0;
  json_t *errs = tg_workflow_check_code(definition, &env, &unknown);
  if (unknown)
    tg_info("code_packages_unchecked", "{s:s}", "reason", "the probe has not answered");
  return errs;
}
