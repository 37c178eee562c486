/* GStreamer clipseg
 * plugin.c: registers the clipseg, clipsegmask and clipsegjsonsink elements.
 *
 * This library is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Library General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstclipseg.h"
#include "gstclipsegjsonsink.h"
#include "gstclipsegmask.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return GST_ELEMENT_REGISTER (clipseg, plugin)
      && GST_ELEMENT_REGISTER (clipsegmask, plugin)
      && GST_ELEMENT_REGISTER (clipsegjsonsink, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR,
    GST_VERSION_MINOR,
    clipseg,
    "Open-vocabulary dense segmentation of video with CLIP",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
