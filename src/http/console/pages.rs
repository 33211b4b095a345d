//! The console's pages (`GET`): each gathers what it shows on the blocking pool — counts,
//! accounts and balances, the queue, the sweep's plan, the audit log, policy versions — and
//! renders its template. Nothing here reads a member's images or layers.

use std::collections::BTreeMap;

use hyper::{Request, StatusCode};
use minijinja::context;

use super::render::{notice, page};
use super::{shown, Admin};
use crate::error::ApiError;
use crate::http::request::query;
use crate::http::respond::HttpResult;
use crate::http::router::parse_id;
use crate::http::{blocking, ReqBody, Server};
use crate::ids::UserId;
use crate::store::{JobState, Plan, Role, StoreError, UserRecord};

/// Rows of the audit log shown per page.
const AUDIT_PAGE: u64 = 50;

fn member_row(u: &UserRecord, credits: i64) -> minijinja::Value {
    context! {
        id => u.id.to_string(), email => u.email.clone(), name => u.name.clone(),
        role => u.role, plan => u.plan, credits => credits,
        verified => u.verified, suspended => u.suspended,
        created_at => u.created_at, last_active_at => u.last_active_at,
    }
}

fn audit_row(e: &crate::store::AuditEntry) -> minijinja::Value {
    context! {
        seq => e.seq, at => e.at, actor => e.actor.clone(), action => e.action.clone(),
        target => e.target.clone(), detail => e.detail.to_string(), hash => e.hash.clone(),
    }
}

/// `GET /admin`: members by plan, the queue, storage, the models and the latest audit entries.
pub async fn overview(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let (store, blobs, audit) = (app.store.clone(), app.blobs.clone(), app.audit.clone());
    let data = blocking(move || {
        let users = store.list_users()?;
        let count = |f: &dyn Fn(&UserRecord) -> bool| users.iter().filter(|u| f(u)).count();
        let members = context! {
            total => users.len(),
            free => count(&|u| u.plan == Plan::Free),
            pro => count(&|u| u.plan == Plan::Pro),
            studio => count(&|u| u.plan == Plan::Studio),
            admins => count(&|u| u.role == Role::Admin),
            suspended => count(&|u| u.suspended),
            unverified => count(&|u| !u.verified),
            pending_deletion => store.deletions()?.len(),
        };
        let head = store.audit_head()?.map_or(0, |h| h.seq);
        let mut recent = audit.entries(head.saturating_sub(8), 8)?;
        recent.reverse();
        let storage = context! {
            store_bytes => store.size_on_disk(),
            blob_bytes => blobs.disk_usage().unwrap_or(0),
        };
        Ok::<_, StoreError>((
            members,
            store.job_counts()?,
            storage,
            recent.iter().map(audit_row).collect::<Vec<_>>(),
        ))
    })
    .await;
    let r = data.and_then(|(members, jobs, storage, recent)| {
        page(
            &admin,
            StatusCode::OK,
            "admin/overview.html",
            "Overview",
            "overview",
            context! {
                notice => notice(query(&parts, "done").as_deref()),
                members => members,
                jobs => job_counts(jobs),
                storage => storage,
                models => models(app),
                next_sweep => next_sweep(app),
                recent => recent,
            },
        )
    });
    shown(&admin, r)
}

fn job_counts(counts: [u64; 5]) -> minijinja::Value {
    let map: BTreeMap<&str, u64> = JobState::ALL
        .iter()
        .zip(counts)
        .map(|(s, n)| (s.as_str(), n))
        .collect();
    minijinja::Value::from_serialize(&map)
}

/// The inference runtime as the console shows it: state, provider and every model.
fn models(app: &Server) -> minijinja::Value {
    match app.inference.get() {
        Some(inf) => context! {
            state => "loaded",
            provider => inf.provider(),
            models => inf.models().into_iter().map(|(name, load_ms)| context! {
                name => name, loaded => load_ms.is_some(), load_ms => load_ms,
            }).collect::<Vec<_>>(),
        },
        None => context! {
            state => "not loaded",
            reason => app.models_note.lock().map(|n| n.clone()).unwrap_or_default(),
        },
    }
}

fn next_sweep(app: &Server) -> i64 {
    crate::retention::next_after(&app.config.retention.schedule, app.clock.now())
        .map_or(0, |t| t.unix_timestamp())
}

/// `GET /admin/members?q=`: members (search by email or name) with plan and balance.
pub async fn members(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let q = query(&parts, "q").unwrap_or_default();
    let service = app.admin.clone();
    let search = q.clone();
    let found = blocking(move || service.members(Some(&search))).await;
    let r = found.and_then(|found| {
        page(
            &admin,
            StatusCode::OK,
            "admin/members.html",
            "Members",
            "members",
            context! {
                notice => notice(query(&parts, "done").as_deref()),
                q => q,
                members => found.iter().map(|(u, c)| member_row(u, *c)).collect::<Vec<_>>(),
            },
        )
    });
    shown(&admin, r)
}

/// `GET /admin/members/{id}`: one member's account, balance and ledger, with the forms that
/// change them.
pub async fn member(app: &Server, req: Request<ReqBody>, id: &str) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let r = async {
        let id: UserId = parse_id(id, "member")?;
        let (store, billing) = (app.store.clone(), app.billing.clone());
        let (user, (balance, ledger)) = blocking(move || {
            let user = store.get_user(id)?;
            Ok::<_, StoreError>((user, billing.ledger(id)?))
        })
        .await?;
        let user = user.ok_or_else(|| ApiError::not_found("member"))?;
        let entries: Vec<_> = ledger
            .iter()
            .take(100)
            .map(|e| {
                context! {
                    at => e.at, delta => e.delta, balance => e.balance,
                    reason => e.reason,
                    job_id => e.job_id.map(|j| j.to_string()), note => e.note.clone(),
                }
            })
            .collect();
        page(
            &admin,
            StatusCode::OK,
            "admin/member.html",
            &format!("Member {}", user.email),
            "members",
            context! {
                notice => notice(query(&parts, "done").as_deref()),
                member => member_row(&user, balance),
                customer => user.payment_customer.clone(),
                pending_email => user.pending_email.clone(),
                is_self => user.id == admin.principal.user.id,
                plans => ["free", "pro", "studio"],
                ledger => entries,
                ledger_total => ledger.len(),
            },
        )
    }
    .await;
    shown(&admin, r)
}

/// The invites page, with `created` (`{link, plan}`) right after one was made.
pub async fn invites_page(
    app: &Server,
    admin: &Admin,
    status: StatusCode,
    created: Option<minijinja::Value>,
) -> HttpResult {
    let store = app.store.clone();
    let now = app.now();
    let open = blocking(move || store.open_invites(now)).await;
    let r = open.and_then(|open| {
        let rows: Vec<_> = open
            .iter()
            .map(|(key, t)| {
                context! {
                    key => key, plan => t.plan.unwrap_or(Plan::Free),
                    created_at => t.created_at, expires_at => t.expires_at,
                }
            })
            .collect();
        page(
            admin,
            status,
            "admin/invites.html",
            "Invites",
            "invites",
            context! {
                created => created, invites => rows,
                registration => app.config.accounts.registration,
                base_url => app.config.mail.base_url.clone(),
                plans => ["free", "pro", "studio"],
            },
        )
    });
    shown(admin, r)
}

/// `GET /admin/invites`: open invites and the form that makes one.
pub async fn invites(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    invites_page(app, &admin, StatusCode::OK, None).await
}

/// `GET /admin/usage`: jobs and credits per day by plan, as charts and a table, from the
/// aggregated statistics (no group below `privacy.min_group_size`).
pub async fn usage(app: &Server, req: Request<ReqBody>) -> HttpResult {
    use super::charts::{series, stacked_bars};
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let service = app.admin.clone();
    let stats = blocking(move || service.stats()).await;
    let r = stats.and_then(|stats| {
        let jobs = stacked_bars(
            "jobs-chart",
            "Jobs per day, by plan",
            "jobs",
            &series(&stats, "jobs"),
        );
        let credits = stacked_bars(
            "credits-chart",
            "Credits charged per day, by plan",
            "credits",
            &series(&stats, "credits"),
        );
        let mut groups: Vec<serde_json::Value> =
            stats["groups"].as_array().cloned().unwrap_or_default();
        groups.sort_by(|a, b| b["day"].as_str().cmp(&a["day"].as_str()));
        page(
            &admin,
            StatusCode::OK,
            "admin/usage.html",
            "Usage",
            "usage",
            context! {
                jobs_chart => minijinja::Value::from_safe_string(jobs),
                credits_chart => minijinja::Value::from_safe_string(credits),
                min_group_size => stats["min_group_size"].as_u64(),
                groups => minijinja::Value::from_serialize(&groups),
                max_days => super::charts::MAX_DAYS,
            },
        )
    });
    shown(&admin, r)
}

/// `GET /admin/jobs`: the queue by state, the newest jobs (kind, state, member, timing) and
/// the models (provider, which are loaded, how long each took to load).
pub async fn jobs(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let store = app.store.clone();
    let data = blocking(move || {
        let emails: BTreeMap<UserId, String> = store
            .list_users()?
            .into_iter()
            .map(|u| (u.id, u.email))
            .collect();
        let mut all = store.all_jobs()?;
        all.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        let rows: Vec<_> = all
            .iter()
            .take(50)
            .map(|j| {
                context! {
                    id => j.id.to_string(), kind => j.kind.name(), state => j.state.as_str(),
                    owner => emails.get(&j.owner).cloned().unwrap_or_else(|| "(deleted)".into()),
                    owner_id => j.owner.to_string(),
                    progress => (j.progress * 100.0).round() as u32, attempts => j.attempts,
                    created_at => j.created_at, updated_at => j.updated_at,
                    seconds => (j.updated_at - j.created_at).max(0), credits => j.reserved,
                    error => j.error.as_ref().map(|e| e.code.clone()),
                }
            })
            .collect();
        Ok::<_, StoreError>((store.job_counts()?, rows, all.len()))
    })
    .await;
    let r = data.and_then(|(counts, rows, total)| {
        page(
            &admin,
            StatusCode::OK,
            "admin/jobs.html",
            "Jobs and models",
            "jobs",
            context! {
                counts => job_counts(counts), jobs => rows, total => total,
                workers => app.config.jobs.workers,
                max_attempts => app.config.jobs.max_attempts,
                models => models(app),
            },
        )
    });
    shown(&admin, r)
}

/// `GET /admin/retention`: when the sweep runs next and what falls due within a week, by
/// kind and item by item.
pub async fn retention(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let sweeper = app.sweeper.clone();
    let now = app.now();
    let until = now + 7 * 86_400;
    let due = blocking(move || sweeper.due(until)).await;
    let r = due.and_then(|due| {
        let mut kinds: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
        for d in &due {
            let k = kinds.entry(d.kind).or_insert((0, i64::MAX));
            k.0 += 1;
            k.1 = k.1.min(d.expired_at);
        }
        let kinds: Vec<_> = kinds
            .iter()
            .map(|(kind, (n, soonest))| context! { kind => kind, count => n, soonest => soonest })
            .collect();
        let items: Vec<_> = due
            .iter()
            .take(200)
            .map(|d| {
                context! {
                    kind => d.kind, id => d.id.clone(), at => d.expired_at,
                    overdue => d.expired_at <= now,
                }
            })
            .collect();
        let c = &app.config;
        page(
            &admin,
            StatusCode::OK,
            "admin/retention.html",
            "Retention",
            "retention",
            context! {
                next_sweep => next_sweep(app), until => until, kinds => kinds, items => items,
                total => due.len(),
                rules => context! {
                    temporary_hours => c.retention.temporary_hours,
                    free_days => c.retention.free_days, pro_days => c.retention.pro_days,
                    studio_days => c.retention.studio_days,
                    inactive_days => c.privacy.inactive_days,
                    purge_days => c.privacy.deletion_purge_days,
                    export_link_hours => c.privacy.export_link_hours,
                },
            },
        )
    });
    shown(&admin, r)
}

/// `GET /admin/audit?before=`: the hash-chained audit log, newest first, with whether the
/// chain is intact.
pub async fn audit(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let before: Option<u64> = query(&parts, "before").and_then(|v| v.parse().ok());
    let (store, audit) = (app.store.clone(), app.audit.clone());
    let data = blocking(move || {
        let head = store.audit_head()?.map_or(0, |h| h.seq);
        let end = before.unwrap_or(head + 1).min(head + 1);
        let mut rows = audit.entries(end.saturating_sub(AUDIT_PAGE + 1), AUDIT_PAGE as usize)?;
        rows.retain(|e| e.seq < end);
        rows.reverse();
        let chain = match audit.verify() {
            Ok(n) => (true, format!("intact: {n} entries, every hash checked")),
            Err(e) => (false, format!("broken: {e}")),
        };
        Ok::<_, StoreError>((head, rows, chain))
    })
    .await;
    let r = data.and_then(|(head, rows, (intact, chain))| {
        let older = rows.last().map(|e| e.seq).filter(|&s| s > 1);
        page(
            &admin,
            StatusCode::OK,
            "admin/audit.html",
            "Audit log",
            "audit",
            context! {
                entries => rows.iter().map(audit_row).collect::<Vec<_>>(),
                head => head, intact => intact, chain => chain, older => older,
                newest => before.is_none(),
            },
        )
    });
    shown(&admin, r)
}

/// The policies page (also re-shown with an error when publishing fails).
pub async fn policies_page(
    app: &Server,
    admin: &Admin,
    status: StatusCode,
    error: Option<String>,
    done: Option<&str>,
) -> HttpResult {
    let privacy = app.privacy.clone();
    let state = blocking(move || privacy.policy_state()).await;
    let r = state.and_then(|s| {
        let mut versions: Vec<_> = s
            .published
            .iter()
            .map(|p| {
                let status = if p.version == s.current {
                    "in effect"
                } else if p.version > s.current {
                    "pending"
                } else {
                    "superseded"
                };
                context! {
                    version => p.version, body => p.body.clone(), published_at => p.published_at,
                    effective_at => p.effective_at, status => status,
                }
            })
            .collect();
        versions.reverse();
        page(
            admin,
            status,
            "admin/policies.html",
            "Policy versions",
            "policies",
            context! {
                versions => versions, current => s.current, next => s.latest + 1,
                error => error, notice => notice(done),
            },
        )
    });
    shown(admin, r)
}

/// `GET /admin/policies`: every published version and the form that publishes the next.
pub async fn policies(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    let done = query(&parts, "done");
    policies_page(app, &admin, StatusCode::OK, None, done.as_deref()).await
}

/// `GET /admin/password`: the form that replaces the password (the first one is one-time).
pub async fn password(app: &Server, req: Request<ReqBody>) -> HttpResult {
    let (parts, _) = req.into_parts();
    let admin = admit!(app, parts);
    password_page(&admin, StatusCode::OK, None)
}

/// The password form, with an error after a failed change.
pub fn password_page(admin: &Admin, status: StatusCode, error: Option<String>) -> HttpResult {
    let r = page(
        admin,
        status,
        "admin/password.html",
        "Change your password",
        "",
        context! {
            error => error,
            first => admin.principal.user.must_change_password,
        },
    );
    shown(admin, r)
}
