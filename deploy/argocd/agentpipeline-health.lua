-- Argo CD health check of AgentPipeline (agentprod.io/v1alpha1).
-- Install it as resource.customizations.health.agentprod.io_AgentPipeline in argocd-cm
-- (deploy/argocd/argocd-cm.yaml embeds this file verbatim; docs/argocd.md explains it).
--
--   no status yet, or status older than metadata.generation   -> Progressing
--   being deleted (the operator's finalizer still on it)        -> Progressing
--   Ready=False with a reason only a spec change can fix        -> Degraded
--   Ready=True with scaling paused (spec or annotation)         -> Suspended
--   Ready=True                                                  -> Healthy
--   Ready=False for any other reason (e.g. RocketMQUnavailable,
--   which the operator retries on its own)                      -> Progressing

-- Ready=False reasons the operator will not get past by retrying.
local TERMINAL = {
  NotSupported = true, -- a topic's queue count would decrease: RocketMQ cannot shrink it
  InvalidSpec = true,  -- the spec does not parse: fix it in Git
  WorkerConfigInvalid = true, -- the worker image refuses agent.name/config
}
local PAUSE_ANNOTATION = "agentprod.io/scaling-paused"

local function result(status, message)
  return { status = status, message = message }
end

local function condition(conditions, kind)
  for _, item in ipairs(conditions) do
    if item.type == kind then
      return item
    end
  end
  return nil
end

local function paused()
  if obj.spec ~= nil and obj.spec.scaling ~= nil and obj.spec.scaling.paused == true then
    return true
  end
  local annotations = obj.metadata and obj.metadata.annotations
  local flag = annotations and annotations[PAUSE_ANNOTATION]
  -- the operator accepts "true" in any case, with surrounding blanks
  return type(flag) == "string" and string.lower(string.match(flag, "^%s*(.-)%s*$")) == "true"
end

local function describe(item)
  local text = item.reason or "NoReason"
  if item.message ~= nil and item.message ~= "" then
    text = text .. ": " .. item.message
  end
  return text
end

local metadata = obj.metadata or {}
if metadata.deletionTimestamp ~= nil then
  local message = "Pending deletion"
  if metadata.finalizers ~= nil and #metadata.finalizers > 0 then
    message = message .. "; waiting for finalizers: " .. table.concat(metadata.finalizers, ", ")
  end
  return result("Progressing", message)
end

local status = obj.status
if status == nil or status.conditions == nil then
  return result("Progressing", "Waiting for the operator to report status")
end
local ready = condition(status.conditions, "Ready")
if ready == nil then
  return result("Progressing", "Waiting for the Ready condition")
end

-- The Ready condition carries the generation it was computed for; status.observedGeneration
-- is the fallback (an InvalidSpec answer sets only the condition's).
local observed = ready.observedGeneration or status.observedGeneration
if metadata.generation ~= nil and (observed == nil or observed < metadata.generation) then
  return result(
    "Progressing",
    string.format(
      "Waiting for the operator to reconcile generation %d (status is for %s)",
      metadata.generation,
      observed == nil and "none" or string.format("%d", observed)
    )
  )
end

if ready.status == "False" and TERMINAL[ready.reason] then
  return result("Degraded", describe(ready))
end
if ready.status == "True" then
  if paused() then
    return result("Suspended", "Scaling paused: worker replicas are left as they are")
  end
  return result("Healthy", describe(ready))
end
return result("Progressing", describe(ready))
