/*-------------------------------------------------------------------------
 *
 * gateway.h
 *	  ku9's embedded HTTP gateway: background workers that speak
 *	  PostgREST's protocol for ku9_api, with server-sent events.
 *
 * Copyright (c) 2026, ku9 contributors
 *
 * IDENTIFICATION
 *	  src/http/gateway.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KU9_GATEWAY_H
#define KU9_GATEWAY_H

/* the most gateway workers ku9.http_workers may ask for */
#define KU9_MAX_HTTP_WORKERS 16

/* settings (src/ku9.c) */
extern PGDLLIMPORT char *ku9_http_listen_address;
extern PGDLLIMPORT int ku9_http_workers;
extern PGDLLIMPORT int ku9_http_pool_size;
extern PGDLLIMPORT char *ku9_http_conninfo;
extern PGDLLIMPORT char *ku9_http_cors_origins;
extern PGDLLIMPORT int ku9_http_max_body;
extern PGDLLIMPORT int ku9_http_idle_timeout;
extern PGDLLIMPORT int ku9_http_request_timeout;
extern PGDLLIMPORT int ku9_http_max_connections;
extern PGDLLIMPORT int ku9_http_max_connections_per_address;
extern PGDLLIMPORT int ku9_http_heartbeat;

/* true when the launcher should start gateway workers */
extern bool Ku9GatewayEnabled(void);

/* started by the launcher (src/worker/worker.c); bgw_extra: generation */
extern PGDLLEXPORT void Ku9GatewayMain(Datum main_arg);

/* the launcher's generation, which a gateway worker exits on changing */
extern uint32 Ku9LauncherGeneration(void);

#endif							/* KU9_GATEWAY_H */
