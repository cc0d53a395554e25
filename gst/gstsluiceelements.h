/* SPDX-License-Identifier: MIT */
/* The elements of the "sluice" plugin and its debug categories. */
#ifndef GST_SLUICE_ELEMENTS_H
#define GST_SLUICE_ELEMENTS_H

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE(icesrc);
GST_ELEMENT_REGISTER_DECLARE(icesink);
GST_ELEMENT_REGISTER_DECLARE(turnclient);

G_END_DECLS
#endif
