package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// The scripts: every change of a session is one of them, so that it is
// atomic and reads one clock, Redis's TIME, never an application's. Each
// touches the keys of one bucket only, which share a hash tag and so one
// cluster slot. Some build a key of the bucket from a prefix passed in ARGV
// (a session's hash from the claim's members, an owner's index from the
// hash's owner field): such keys lie in the same slot as KEYS[1], which is
// what Redis Cluster requires of a script.
//
// Key layout, for prefix P and bucket b ({P:b} is the hash tag):
//
//	{P:b}:due       sorted set: id -> deadline (ms, Redis time); live and overdue unclaimed sessions
//	{P:b}:lease     sorted set: id -> end of its claim's lease (ms); the fencing token of Ack
//	{P:b}:s:<id>    hash: c created, d deadline (mirror of the score), i idle timeout (ms),
//	                a absolute deadline (if any), r reason once ending, o owner, v:<key> values
//	{P:b}:o:<owner> set: ids of the owner's sessions in the bucket (may hold stale ids; Owned prunes)
//
// Every script opens with the same line: now, in ms of Redis time.
const clockLine = `local t=redis.call('TIME') local now=t[1]*1000+math.floor(t[2]/1000)
`

// Replies: most scripts return {now, ...} so that every round trip also
// refreshes the store's estimate of Redis's clock; a deadline of -1 says
// the session is not alive.

// clockScript: KEYS bucket's due set (for routing only).
var clockScript = newScript(`return now`)

// createScript: KEYS due, hash; ARGV id, idle ms, absolute ms (0: none), grace ms.
// NX semantics: an id whose hash or due member exists is refused ({now,-1});
// ZADD NX is the due member's test and its insertion at once.
var createScript = newScript(`
local i=tonumber(ARGV[2]) local d=now+i local a=0
if tonumber(ARGV[3])>0 then a=now+ARGV[3] if a<d then d=a end end
if redis.call('EXISTS',KEYS[2])==1 or redis.call('ZADD',KEYS[1],'NX',d,ARGV[1])==0 then return {now,-1} end
if a>0 then redis.call('HSET',KEYS[2],'c',now,'d',d,'i',i,'a',a) else redis.call('HSET',KEYS[2],'c',now,'d',d,'i',i) end
redis.call('PEXPIREAT',KEYS[2],d+ARGV[4])
return {now,d}`)

// touchScript: KEYS due, hash; ARGV id, slack ms, grace ms. Runs only when
// the client found the deadline too early for now+idle; moves it to
// now+idle+slack (capped by the absolute deadline), never backwards
// (ZADD XX GT), never for a session that has ended or is overdue (touch
// never resurrects). Reply {now, deadline, wrote}.
var touchScript = newScript(`
local f=redis.call('HMGET',KEYS[2],'d','i','a','r') local d=tonumber(f[1])
if not d or f[4] or d<=now then return {now,-1,0} end
local a=tonumber(f[3]) local w=now+f[2]
if a and a<w then w=a end
if w<=d then return {now,d,0} end
local nd=w+ARGV[2] if a and a<nd then nd=a end
if redis.call('ZADD',KEYS[1],'XX','GT','CH',nd,ARGV[1])==0 then return {now,-1,0} end
redis.call('HSET',KEYS[2],'d',nd) redis.call('PEXPIREAT',KEYS[2],nd+ARGV[3])
return {now,nd,1}`)

// lookupTouchScript: KEYS due, hash; ARGV id, slack ms, grace ms. A
// lookup and its touch in one round trip, for a lookup that expects to
// write: the touchScript's decision, made against Redis's own now rather
// than the client's estimate, and the record's fields. Reply {now,
// deadline, wrote, created, idle, owner}, or {now,-1,0} if not alive
// (touch never resurrects).
var lookupTouchScript = newScript(`
local f=redis.call('HMGET',KEYS[2],'d','i','a','r','c','o') local d=tonumber(f[1])
if not d or f[4] or d<=now then return {now,-1,0} end
local a=tonumber(f[3]) local w=now+f[2]
if a and a<w then w=a end
if w<=d then return {now,d,0,f[5],f[2],f[6] or ''} end
local nd=w+ARGV[2] if a and a<nd then nd=a end
if redis.call('ZADD',KEYS[1],'XX','GT','CH',nd,ARGV[1])==0 then return {now,-1,0} end
redis.call('HSET',KEYS[2],'d',nd) redis.call('PEXPIREAT',KEYS[2],nd+ARGV[3])
return {now,nd,1,f[5],f[2],f[6] or ''}`)

// renewScript: KEYS due, old hash, new hash; ARGV old id, new id, slack ms,
// grace ms, owner index prefix. Both ids are in one bucket. Reply
// {now, deadline, created, idle, absolute, owner}; deadline -1: old not
// alive, -2: new id in use.
var renewScript = newScript(`
local s=tonumber(redis.call('ZSCORE',KEYS[1],ARGV[1]))
if not s or s<=now or redis.call('HEXISTS',KEYS[2],'r')==1 then return {now,-1} end
if redis.call('EXISTS',KEYS[3])==1 or redis.call('ZSCORE',KEYS[1],ARGV[2]) then return {now,-2} end
local f=redis.call('HMGET',KEYS[2],'c','d','i','a','o')
local d,i,a=tonumber(f[2]),tonumber(f[3]),tonumber(f[4])
local w=now+i if a and a<w then w=a end
local nd=d if w>d then nd=w+ARGV[3] if a and a<nd then nd=a end end
redis.call('RENAME',KEYS[2],KEYS[3]) redis.call('ZREM',KEYS[1],ARGV[1]) redis.call('ZADD',KEYS[1],nd,ARGV[2])
redis.call('HSET',KEYS[3],'d',nd) redis.call('PEXPIREAT',KEYS[3],nd+ARGV[4])
if f[5] then local k=ARGV[5]..f[5] redis.call('SREM',k,ARGV[1]) redis.call('SADD',k,ARGV[2]) end
return {now,nd,f[1],f[3],f[4] or '0',f[5] or ''}`)

// expireScript: KEYS due, lease, hash; ARGV id, lease ms, grace ms. Moves a
// session from due to lease: of racing callers exactly one finds it in
// due. A session past its deadline ends for its own reason. Reply
// {now, lease end, reason} or {now} if not found.
var expireScript = newScript(`
local s=tonumber(redis.call('ZSCORE',KEYS[1],ARGV[1])) if not s then return {now} end
local r='explicit'
if s<=now then if tonumber(redis.call('HGET',KEYS[3],'a'))==s then r='absolute' else r='idle' end end
local l=now+ARGV[2] redis.call('ZREM',KEYS[1],ARGV[1]) redis.call('ZADD',KEYS[2],l,ARGV[1])
redis.call('HSET',KEYS[3],'r',r) redis.call('PEXPIREAT',KEYS[3],l+ARGV[3])
return {now,l,r}`)

// claimScript: KEYS due, lease; ARGV max, lease ms, grace ms, hash prefix.
// First re-offers claims whose lease has run out (their reason stays in
// the hash), then moves due sessions to the lease set, marking their
// reason. A member whose hash is gone (garbage-collected after grace with
// nobody claiming) is dropped: there is nothing left to run it with.
// Reply {now, lease end, earliest due, earliest lease, backlog,
// {id, reason, redelivered, ...}}.
var claimScript = newScript(`
local n,l,g,hp=tonumber(ARGV[1]),now+ARGV[2],tonumber(ARGV[3]),ARGV[4]
local out={}
local re={} if n>0 then re=redis.call('ZRANGE',KEYS[2],'-inf',now,'BYSCORE','LIMIT',0,n) end
for _,m in ipairs(re) do
  local h=hp..m local r=redis.call('HGET',h,'r')
  if r then redis.call('ZADD',KEYS[2],l,m) redis.call('PEXPIREAT',h,l+g) out[#out+1]=m out[#out+1]=r out[#out+1]=1
  else redis.call('ZREM',KEYS[2],m) end
end
if n>#re then
  local fr=redis.call('ZRANGE',KEYS[1],'-inf',now,'BYSCORE','LIMIT',0,n-#re,'WITHSCORES')
  for k=1,#fr,2 do
    local m,s=fr[k],tonumber(fr[k+1]) local h=hp..m
    redis.call('ZREM',KEYS[1],m)
    if redis.call('EXISTS',h)==1 then
      local r='idle' if tonumber(redis.call('HGET',h,'a'))==s then r='absolute' end
      redis.call('HSET',h,'r',r) redis.call('PEXPIREAT',h,l+g) redis.call('ZADD',KEYS[2],l,m)
      out[#out+1]=m out[#out+1]=r out[#out+1]=0
    end
  end
end
local w1=redis.call('ZRANGE',KEYS[1],0,0,'WITHSCORES') local w2=redis.call('ZRANGE',KEYS[2],0,0,'WITHSCORES')
local back=redis.call('ZCOUNT',KEYS[1],'-inf',now)+redis.call('ZCOUNT',KEYS[2],'-inf',now)
return {now,l,w1[2] or '0',w2[2] or '0',back,out}`)

// ackScript: KEYS lease, hash1..n; ARGV owner index prefix, id1, lease1,
// id2, lease2, ... Deletes each session only while its lease is still the
// one acknowledged (a lapsed claim may have been re-offered elsewhere).
// Reply {now, refused ids...}.
var ackScript = newScript(`
local out={now}
for k=2,#KEYS do
  local m,tok=ARGV[2*k-2],tonumber(ARGV[2*k-1])
  if tonumber(redis.call('ZSCORE',KEYS[1],m))==tok then
    local o=redis.call('HGET',KEYS[k],'o') if o then redis.call('SREM',ARGV[1]..o,m) end
    redis.call('ZREM',KEYS[1],m) redis.call('DEL',KEYS[k])
  else out[#out+1]=m end
end
return out`)

// aliveLine checks that KEYS[1] is the hash of a live session.
const aliveLine = `local f=redis.call('HMGET',KEYS[1],'d','r','o') local d=tonumber(f[1])
if not d or f[2] or d<=now then return {now,0} end
`

// setValueScript: KEYS hash; ARGV field, value. Reply {now, 1 if alive}.
var setValueScript = newScript(aliveLine + `redis.call('HSET',KEYS[1],ARGV[1],ARGV[2]) return {now,1}`)

// deleteValueScript: KEYS hash; ARGV field.
var deleteValueScript = newScript(aliveLine + `redis.call('HDEL',KEYS[1],ARGV[1]) return {now,1}`)

// setOwnerScript: KEYS hash; ARGV id, owner ("" for none), owner index
// prefix. The hash's o field and the owner's index change together.
var setOwnerScript = newScript(aliveLine + `
local old=f[3]
if old==ARGV[2] then return {now,1} end
if old then redis.call('SREM',ARGV[3]..old,ARGV[1]) end
if ARGV[2]=='' then redis.call('HDEL',KEYS[1],'o') else redis.call('HSET',KEYS[1],'o',ARGV[2]) redis.call('SADD',ARGV[3]..ARGV[2],ARGV[1]) end
return {now,1}`)

// setIdleScript: KEYS due, hash; ARGV id, idle ms, slack ms, grace ms. The
// new deadline is the latest touch the old one covers (d-i) plus the new
// idle timeout: a shorter one may make the session due at once. Capped by
// the absolute deadline, the latest touch is unknown; now+slack bounds it
// from above, so the session never ends early. Reply {now, deadline}.
var setIdleScript = newScript(`
local f=redis.call('HMGET',KEYS[2],'d','i','a','r') local d=tonumber(f[1])
if not d or f[4] or d<=now then return {now,-1} end
local i,a,ni=tonumber(f[2]),tonumber(f[3]),tonumber(ARGV[2])
local base=d-i
if a and d>=a then base=now+ARGV[3] end
local nd=base+ni if a and a<nd then nd=a end
redis.call('ZADD',KEYS[1],'XX',nd,ARGV[1])
redis.call('HSET',KEYS[2],'d',nd,'i',ni) redis.call('PEXPIREAT',KEYS[2],nd+ARGV[4])
return {now,nd}`)

// pruneOwnerScript: KEYS owner index; ARGV hash prefix, owner, ids...
// Removes the ids whose session no longer names the owner (ended, renewed
// or given to another owner since), checked atomically so that a
// concurrent SetOwner back to this owner is never undone.
var pruneOwnerScript = newScript(`
local c=0
for k=3,#ARGV do if redis.call('HGET',ARGV[1]..ARGV[k],'o')~=ARGV[2] then c=c+redis.call('SREM',KEYS[1],ARGV[k]) end end
return {now,c}`)

// script is a Lua script run with EVALSHA, falling back to EVAL when the
// server does not know it (after a restart or on a new node). rueidis.Lua
// does this for one call; its ExecMulti loads the script on every node on
// every call, a round trip too many for the claim pipeline.
type script struct {
	src, sha string
}

func newScript(body string) *script {
	src := clockLine + body
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

func (s *script) sha1Cmd(c rueidis.Client, keys, args []string) rueidis.Completed {
	return c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

func (s *script) evalCmd(c rueidis.Client, keys, args []string) rueidis.Completed {
	return c.B().Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// exec runs the script once.
func (s *script) exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	r := c.Do(ctx, s.sha1Cmd(c, keys, args))
	if noScript(r.Error()) {
		r = c.Do(ctx, s.evalCmd(c, keys, args))
	}
	return r
}

// call is one run of a script in a pipeline.
type call struct {
	s          *script
	keys, args []string
}

// execMulti runs the calls in one pipeline (rueidis splits it by node in
// a cluster), then again with EVAL those the server did not know.
func execMulti(ctx context.Context, c rueidis.Client, calls []call) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(calls))
	for i, k := range calls {
		cmds[i] = k.s.sha1Cmd(c, k.keys, k.args)
	}
	res := c.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range res {
		if noScript(r.Error()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		cmds = cmds[:0]
		for _, i := range again {
			cmds = append(cmds, calls[i].s.evalCmd(c, calls[i].keys, calls[i].args))
		}
		for j, r := range c.DoMulti(ctx, cmds...) {
			res[again[j]] = r
		}
	}
	return res
}

func noScript(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && re.IsNoScript()
}
