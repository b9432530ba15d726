//! One method per GitLab REST endpoint glmirror calls: instance and caller, projects, pull
//! mirrors, push mirrors and users. Each builds its URL and body, then hands the request to
//! the send loop in [`super::client`] or a list to [`super::pagination`].

use futures::Stream;
use reqwest::Method;

use super::body::secret_body;
use super::client::GitLabClient;
use super::error::GitLabError;
use super::model::{
    ApplicationSettings, ImportUrlUpdate, Member, Metadata, MirrorUserUpdate, Project,
    ProjectQuery, PullMirror, PullMirrorUpdate, RemoteMirror, RemoteMirrorCreate, TokenSelf, User,
};
use super::pagination::{PageMode, paginate};

/// Page size for list endpoints (GitLab's maximum).
pub(crate) const PER_PAGE: u32 = 100;

impl GitLabClient {
    // ----- instance and caller --------------------------------------------------------------

    /// `GET /metadata` (`doc/api/metadata.md`), falling back to `GET /version` on 404 (older
    /// GitLab), where `enterprise` is inferred from a `-ee` version suffix.
    #[tracing::instrument(skip_all)]
    pub async fn metadata(&self) -> Result<Metadata, GitLabError> {
        match self.get_json::<Metadata>(self.url(&["metadata"])).await {
            Err(e) if e.is_not_found() => {
                self.uncount_error();
                let mut meta: Metadata = self.get_json(self.url(&["version"])).await?;
                meta.enterprise = meta.version.to_ascii_lowercase().contains("-ee");
                Ok(meta)
            }
            other => other,
        }
    }

    /// `GET /user`: the token's user (`is_admin` only present for admins).
    #[tracing::instrument(skip_all)]
    pub async fn current_user(&self) -> Result<User, GitLabError> {
        self.get_json(self.url(&["user"])).await
    }

    /// `GET /personal_access_tokens/self` (15.5+); `None` where the endpoint does not exist
    /// (404 on old GitLab).
    #[tracing::instrument(skip_all)]
    pub async fn token_self(&self) -> Result<Option<TokenSelf>, GitLabError> {
        self.get_optional(self.url(&["personal_access_tokens", "self"]), GitLabError::is_not_found)
            .await
    }

    /// `GET /application/settings` (admins only).
    #[tracing::instrument(skip_all)]
    pub async fn application_settings(&self) -> Result<ApplicationSettings, GitLabError> {
        self.get_json(self.url(&["application", "settings"])).await
    }

    // ----- projects -----------------------------------------------------------------------

    /// Every project visible to the token, by ascending id, with keyset pagination
    /// (`doc/api/rest/_index.md#keyset-based-pagination`). Lazy: one page in memory.
    pub fn projects(
        &self,
        q: ProjectQuery,
    ) -> impl Stream<Item = Result<Project, GitLabError>> + Send + '_ {
        let mut url = self.url(&["projects"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("pagination", "keyset")
                .append_pair("order_by", "id")
                .append_pair("sort", "asc")
                .append_pair("per_page", &PER_PAGE.to_string());
            if let Some(level) = q.min_access_level {
                pairs.append_pair("min_access_level", &level.to_string());
            }
            if let Some(archived) = q.archived {
                pairs.append_pair("archived", if archived { "true" } else { "false" });
            }
        }
        paginate(self, url, PageMode::Keyset)
    }

    /// The projects of a group (`group` is an id or a full path), optionally with its
    /// subgroups; shared projects are excluded so each project appears once, in its home
    /// group. Offset pagination (`doc/api/groups.md`: no keyset here).
    pub fn group_projects(
        &self,
        group: &str,
        include_subgroups: bool,
    ) -> impl Stream<Item = Result<Project, GitLabError>> + Send + '_ {
        let mut url = self.url(&["groups", group, "projects"]);
        url.query_pairs_mut()
            .append_pair("include_subgroups", if include_subgroups { "true" } else { "false" })
            .append_pair("with_shared", "false")
            .append_pair("order_by", "id")
            .append_pair("sort", "asc")
            .append_pair("per_page", &PER_PAGE.to_string());
        paginate(self, url, PageMode::Offset)
    }

    /// `GET /projects/:id` by numeric id or full path (`group/sub/project`, URL-encoded).
    #[tracing::instrument(skip_all, fields(project = %id_or_path))]
    pub async fn project(&self, id_or_path: &str) -> Result<Project, GitLabError> {
        self.get_json(self.url(&["projects", id_or_path.trim_matches('/')])).await
    }

    // ----- pull mirrors (EE) --------------------------------------------------------------

    /// `GET /projects/:id/mirror/pull` (`doc/api/project_pull_mirroring.md`); `None` when
    /// GitLab answers 400 "The project is not mirrored".
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn pull_mirror(&self, project_id: u64) -> Result<Option<PullMirror>, GitLabError> {
        let id = project_id.to_string();
        self.get_optional(self.url(&["projects", &id, "mirror", "pull"]), |e| {
            e.status() == Some(400) && e.body().contains("not mirrored")
        })
        .await
    }

    /// `PUT /projects/:id/mirror/pull` (17.6+): set URL and credentials (sent raw, in the
    /// JSON body) and any flags given. The caller becomes the mirror user; GitLab starts an
    /// update. The body is never logged.
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn update_pull_mirror(
        &self,
        project_id: u64,
        req: &PullMirrorUpdate,
    ) -> Result<PullMirror, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(req)?;
        self.write_json(Method::PUT, self.url(&["projects", &id, "mirror", "pull"]), Some(body))
            .await
    }

    /// The deprecated pull-mirror path before 17.6: `PUT /projects/:id` with `import_url`
    /// (userinfo percent-encoded), `mirror` and flags (`doc/api/projects.md`). GitLab drops
    /// the mirror attributes silently without `admin_mirror`, and probes the URL (422 when
    /// unreachable): re-read the project afterwards.
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub(crate) async fn update_project_import_url(
        &self,
        project_id: u64,
        req: &ImportUrlUpdate,
    ) -> Result<Project, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(req)?;
        self.write_json(Method::PUT, self.url(&["projects", &id]), Some(body)).await
    }

    /// The deprecated pull-mirror path before 17.6, changing only the mirror user:
    /// `PUT /projects/:id` with `mirror_user_id` (administrators only; `doc/api/projects.md`).
    /// URL and stored credentials are not sent, so GitLab keeps them.
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub(crate) async fn update_project_mirror_user(
        &self,
        project_id: u64,
        mirror_user_id: u64,
    ) -> Result<Project, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(&MirrorUserUpdate { mirror_user_id })?;
        self.write_json(Method::PUT, self.url(&["projects", &id]), Some(body)).await
    }

    /// `POST /projects/:id/mirror/pull`: ask GitLab to update the mirror now. GitLab answers
    /// 200 even when it only defers the update (cool-down, update already due).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn trigger_pull_mirror(&self, project_id: u64) -> Result<(), GitLabError> {
        let id = project_id.to_string();
        self.send(Method::POST, &self.url(&["projects", &id, "mirror", "pull"]), None).await?;
        Ok(())
    }

    // ----- push mirrors -------------------------------------------------------------------

    /// Every push mirror of a project (`GET /projects/:id/remote_mirrors`, all pages).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn remote_mirrors(&self, project_id: u64) -> Result<Vec<RemoteMirror>, GitLabError> {
        use futures::TryStreamExt;
        let id = project_id.to_string();
        let mut url = self.url(&["projects", &id, "remote_mirrors"]);
        url.query_pairs_mut().append_pair("per_page", &PER_PAGE.to_string());
        paginate(self, url, PageMode::Offset).try_collect().await
    }

    /// One push mirror (14.10+); `None` on 404.
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<Option<RemoteMirror>, GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        self.get_optional(
            self.url(&["projects", &id, "remote_mirrors", &mid]),
            GitLabError::is_not_found,
        )
        .await
    }

    /// `POST /projects/:id/remote_mirrors`: create a push mirror (credentials in `url`).
    #[tracing::instrument(skip_all, fields(project_id = project_id))]
    pub async fn create_remote_mirror(
        &self,
        project_id: u64,
        req: &RemoteMirrorCreate,
    ) -> Result<RemoteMirror, GitLabError> {
        let id = project_id.to_string();
        let body = secret_body(req)?;
        self.write_json(Method::POST, self.url(&["projects", &id, "remote_mirrors"]), Some(body))
            .await
    }

    /// `DELETE /projects/:id/remote_mirrors/:mirror_id`. Idempotent: a 404 (already gone,
    /// e.g. deleted before a crash) counts as success, so a resumed apply can repeat it.
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub async fn delete_remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<(), GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        match self
            .send(Method::DELETE, &self.url(&["projects", &id, "remote_mirrors", &mid]), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                self.uncount_error();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /projects/:id/remote_mirrors/:mirror_id/sync`: push now (204; GitLab may defer).
    #[tracing::instrument(skip_all, fields(project_id = project_id, mirror_id = mirror_id))]
    pub(crate) async fn sync_remote_mirror(
        &self,
        project_id: u64,
        mirror_id: u64,
    ) -> Result<(), GitLabError> {
        let (id, mid) = (project_id.to_string(), mirror_id.to_string());
        self.send(
            Method::POST,
            &self.url(&["projects", &id, "remote_mirrors", &mid, "sync"]),
            None,
        )
        .await?;
        Ok(())
    }

    // ----- users --------------------------------------------------------------------------

    /// `GET /users/:id`; `None` on 404.
    #[tracing::instrument(skip_all, fields(user_id = id))]
    pub async fn user(&self, id: u64) -> Result<Option<User>, GitLabError> {
        let id = id.to_string();
        self.get_optional(self.url(&["users", &id]), GitLabError::is_not_found).await
    }

    /// `GET /users?username=NAME`: the user with exactly this username, if any.
    #[tracing::instrument(skip_all)]
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, GitLabError> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut().append_pair("username", username);
        let users: Vec<User> = self.get_json(url).await?;
        Ok(users.into_iter().find(|u| u.username.eq_ignore_ascii_case(username)))
    }

    /// `GET /projects/:id/members/all/:user_id`: the user's effective access level in the
    /// project, inherited and invited memberships included (`doc/api/members.md`); `None` when
    /// the user is no member at all (404).
    #[tracing::instrument(skip_all)]
    pub(crate) async fn project_member_access(
        &self,
        project_id: u64,
        user_id: u64,
    ) -> Result<Option<u32>, GitLabError> {
        let (project, user) = (project_id.to_string(), user_id.to_string());
        let url = self.url(&["projects", &project, "members", "all", &user]);
        let member: Option<Member> = self.get_optional(url, GitLabError::is_not_found).await?;
        Ok(member.map(|m| m.access_level))
    }
}
