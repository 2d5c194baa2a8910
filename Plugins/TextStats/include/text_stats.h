/* The TextStats plugin exports only bp_plugin_entry_v1 (declared in budpipeline_plugin.h). */
#ifndef TEXT_STATS_H
#define TEXT_STATS_H
#include "budpipeline_plugin.h"
#endif
