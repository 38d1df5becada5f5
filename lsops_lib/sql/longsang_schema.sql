-- The LongSang Admin AI Copilot API database, as lsops's tests and demo load it.
--
-- Eleven tables: projects, workflows, workflow_executions, agents, context_embeddings,
-- context_indexing_log, documents, conversations, agent_executions, response_cache,
-- news_digests. context_embeddings and context_indexing_log, with their indexes, are the
-- reference page's ("Tables in the database"); the other tables are modelled on what the
-- API stores, every foreign key with a supporting index.
--
-- The embedding column: `vector(1536)` (OpenAI text-embedding-3-small) with its HNSW index
-- (vector_cosine_ops, m = 16, ef_construction = 64) where the pgvector extension is
-- available. Where it is not (Debian's server binaries), the documented STAND-IN is
-- `real[]` (a plain float4 array holding the same 1536 numbers), with NO vector index:
-- everything lsops inspects (row counts, null embeddings, sizes, the other indexes) is
-- the same; only the vector index section of a report is then empty.
--
-- Plain SQL (PL/pgSQL DO blocks for the two choices), runnable with psql -f as well as
-- by lsops_lib.db.schema.load_longsang_schema().

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    CREATE EXTENSION IF NOT EXISTS vector;
  END IF;
END
$$;

CREATE TABLE projects (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE,
  description TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','archived')),
  metadata JSONB DEFAULT '{}',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_projects_status ON projects(status);

CREATE TABLE workflows (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  description TEXT,
  definition JSONB DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'active',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_workflows_project_id ON workflows(project_id);

CREATE TABLE workflow_executions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workflow_id UUID NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
  status TEXT NOT NULL CHECK (status IN ('pending','running','completed','failed')),
  input JSONB,
  output JSONB,
  error_message TEXT,
  duration_ms INTEGER,
  started_at TIMESTAMPTZ DEFAULT NOW(),
  completed_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_workflow_executions_workflow_id ON workflow_executions(workflow_id);
CREATE INDEX idx_workflow_executions_created_at ON workflow_executions(created_at DESC);

CREATE TABLE agents (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID REFERENCES projects(id) ON DELETE SET NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  config JSONB DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'active',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_agents_project_id ON agents(project_id);

CREATE TABLE context_embeddings (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  entity_type TEXT NOT NULL CHECK (entity_type IN
      ('project','workflow','execution','agent','post','keyword')),
  entity_id UUID NOT NULL,
  entity_name TEXT NOT NULL,
  entity_description TEXT,
  -- embedding: added below, vector(1536) or the real[] stand-in
  project_id UUID REFERENCES projects(id) ON DELETE CASCADE,
  metadata JSONB DEFAULT '{}',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW(),
  UNIQUE(entity_type, entity_id)
);
CREATE INDEX idx_context_embeddings_entity_type ON context_embeddings(entity_type);
CREATE INDEX idx_context_embeddings_entity_id ON context_embeddings(entity_id);
CREATE INDEX idx_context_embeddings_project_id ON context_embeddings(project_id);
CREATE INDEX idx_context_embeddings_created_at ON context_embeddings(created_at DESC);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
    EXECUTE 'ALTER TABLE context_embeddings ADD COLUMN embedding vector(1536)';
    EXECUTE 'CREATE INDEX idx_context_embeddings_embedding ON context_embeddings '
            'USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)';
    EXECUTE 'COMMENT ON COLUMN context_embeddings.embedding IS '
            '''OpenAI text-embedding-3-small, vector(1536)''';
  ELSE
    EXECUTE 'ALTER TABLE context_embeddings ADD COLUMN embedding real[]';
    EXECUTE 'COMMENT ON COLUMN context_embeddings.embedding IS '
            '''stand-in for vector(1536): pgvector is not available here, no vector index''';
  END IF;
END
$$;

CREATE TABLE context_indexing_log (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  entity_type TEXT NOT NULL,
  entity_id UUID NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending','processing','completed','failed')),
  error_message TEXT,
  tokens_used INTEGER DEFAULT 0,
  created_at TIMESTAMPTZ DEFAULT NOW(),
  completed_at TIMESTAMPTZ
);
CREATE INDEX idx_context_indexing_log_status ON context_indexing_log(status);
CREATE INDEX idx_context_indexing_log_created_at ON context_indexing_log(created_at DESC);

CREATE TABLE documents (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID REFERENCES projects(id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  content TEXT,
  source TEXT,
  metadata JSONB DEFAULT '{}',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_documents_project_id ON documents(project_id);

CREATE TABLE conversations (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id UUID REFERENCES projects(id) ON DELETE SET NULL,
  user_id TEXT,
  title TEXT,
  messages JSONB DEFAULT '[]',
  created_at TIMESTAMPTZ DEFAULT NOW(),
  updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_conversations_project_id ON conversations(project_id);
CREATE INDEX idx_conversations_user_id ON conversations(user_id);

CREATE TABLE agent_executions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  agent_id UUID NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  conversation_id UUID REFERENCES conversations(id) ON DELETE SET NULL,
  status TEXT NOT NULL DEFAULT 'completed',
  input JSONB,
  output JSONB,
  tokens_used INTEGER DEFAULT 0,
  duration_ms INTEGER,
  error_message TEXT,
  created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_agent_executions_agent_id ON agent_executions(agent_id);
CREATE INDEX idx_agent_executions_conversation_id ON agent_executions(conversation_id);
CREATE INDEX idx_agent_executions_created_at ON agent_executions(created_at DESC);

CREATE TABLE response_cache (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  cache_key TEXT NOT NULL UNIQUE,
  response JSONB NOT NULL,
  hits INTEGER DEFAULT 0,
  expires_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_response_cache_expires_at ON response_cache(expires_at);

CREATE TABLE news_digests (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  title TEXT NOT NULL,
  summary TEXT,
  content TEXT,
  sources JSONB DEFAULT '[]',
  published_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_news_digests_published_at ON news_digests(published_at DESC);
