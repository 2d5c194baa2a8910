/* One valid action that echoes nothing; fixtures that break something else reuse it. */
#ifndef MINIMAL_ACTION_H
#define MINIMAL_ACTION_H
#include "fixture.h"

static const bp_host_api_v1 *fixture_host;

__attribute__((unused)) static bp_status minimal_execute(bp_call *call, void *context, bp_bytes input) {
    (void)context;
    (void)input;
    fixture_host->write_output(call, FIXTURE_BYTES("{\"outputs\":{\"ok\":true}}"));
    return BP_STATUS_OK;
}

#define MINIMAL_METADATA(type) \
    "{\"type\":\"" type "\",\"name\":\"Fixture\",\"category\":\"Fixtures\",\"description\":\"A fixture action.\"}"

#define MINIMAL_MANIFEST(name) "{\"name\":\"" name "\",\"version\":\"1.0.0\"}"
#endif
