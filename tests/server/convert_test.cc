#include "server/convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mnemo::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ConvertTest, NamespaceConfigRoundTrip) {
  v1::NamespaceConfig p;
  p.set_name("docs");
  p.set_dim(8);
  p.set_metric(v1::METRIC_COSINE);
  p.set_index_factory("HNSW32");
  p.set_train_threshold(100);
  p.set_description("d");
  auto c = NamespaceConfigFromProto(p);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "docs");
  EXPECT_EQ(c->dim, 8u);
  EXPECT_EQ(c->metric, index::Metric::kCosine);
  EXPECT_EQ(c->index_factory, "HNSW32");
  EXPECT_EQ(c->train_threshold, 100u);
  v1::NamespaceConfig back;
  NamespaceConfigToProto(*c, &back);
  EXPECT_EQ(back.SerializeAsString(), p.SerializeAsString());
}

TEST(ConvertTest, DamagedNamespaceInfoSetsDamagedAndItsMessage) {
  db::NamespaceInfo info;
  info.config.name = "docs";
  info.config.dim = 8;
  v1::NamespaceInfo healthy;
  NamespaceInfoToProto(info, &healthy);
  EXPECT_FALSE(healthy.damaged());
  EXPECT_EQ(healthy.damage(), "");
  info.damage = "namespace 'docs' is damaged and cannot be served: ... 000012.sst ...";
  v1::NamespaceInfo damaged;
  NamespaceInfoToProto(info, &damaged);
  EXPECT_TRUE(damaged.damaged());
  EXPECT_EQ(damaged.damage(), info.damage);
  EXPECT_EQ(damaged.config().name(), "docs");
}

TEST(ConvertTest, UnspecifiedMetricIsInnerProductAndEmptyFactoryIsFlat) {
  v1::NamespaceConfig p;
  p.set_name("a");
  p.set_dim(2);
  auto c = NamespaceConfigFromProto(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->metric, index::Metric::kInnerProduct);
  EXPECT_EQ(c->index_factory, "Flat");
}

TEST(ConvertTest, UnknownMetricIsInvalidArgument) {
  v1::NamespaceConfig p;
  p.set_name("a");
  p.set_dim(2);
  p.set_metric(static_cast<v1::Metric>(77));
  EXPECT_EQ(NamespaceConfigFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, ChunkRoundTripKeepsEveryField) {
  db::Chunk c{"c1", "d1", "text", R"({"a":1})", {1.5f, -2.0f}};
  v1::Chunk p;
  ChunkToProto(c, &p);
  db::Chunk back = ChunkFromProto(p);
  EXPECT_EQ(back.id, "c1");
  EXPECT_EQ(back.document_id, "d1");
  EXPECT_EQ(back.text, "text");
  EXPECT_EQ(back.metadata_json, R"({"a":1})");
  EXPECT_THAT(back.vector, ElementsAre(1.5f, -2.0f));
}

TEST(ConvertTest, HitWithoutChunkHasNoChunk) {
  db::Hit hit;
  hit.id = "x";
  hit.score = 0.5f;
  v1::Hit p;
  HitToProto(hit, &p);
  EXPECT_EQ(p.id(), "x");
  EXPECT_FLOAT_EQ(p.score(), 0.5f);
  EXPECT_FALSE(p.has_chunk());
}

TEST(ConvertFilterTest, EmptyFilterIsEmpty) {
  auto f = FilterFromProto(v1::Filter());
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->empty());
}

TEST(ConvertFilterTest, EqInAndRangeConvert) {
  v1::Filter p;
  auto* eq = p.add_all_of();
  eq->set_field("lang");
  eq->mutable_eq()->set_string_value("en");
  auto* in = p.add_all_of();
  in->set_field("year");
  in->mutable_in()->add_values()->set_number_value(2020);
  in->mutable_in()->add_values()->set_bool_value(true);
  auto* range = p.add_all_of();
  range->set_field("score");
  range->mutable_range()->set_gt(1);
  range->mutable_range()->set_lte(5);

  auto f = FilterFromProto(p);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->all_of.size(), 3u);
  EXPECT_EQ(f->all_of[0].op, index::FieldCondition::Op::kEq);
  EXPECT_EQ(std::get<std::string>(f->all_of[0].values.at(0)), "en");
  EXPECT_EQ(f->all_of[1].op, index::FieldCondition::Op::kIn);
  EXPECT_EQ(std::get<double>(f->all_of[1].values.at(0)), 2020.0);
  EXPECT_EQ(std::get<bool>(f->all_of[1].values.at(1)), true);
  const index::FieldCondition& r = f->all_of[2];
  EXPECT_EQ(r.op, index::FieldCondition::Op::kRange);
  EXPECT_EQ(r.lower, 1.0);
  EXPECT_FALSE(r.lower_inclusive);
  EXPECT_EQ(r.upper, 5.0);
  EXPECT_TRUE(r.upper_inclusive);
}

TEST(ConvertFilterTest, ConditionWithoutOpIsInvalidArgument) {
  v1::Filter p;
  p.add_all_of()->set_field("lang");
  auto f = FilterFromProto(p);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("no op"));
}

TEST(ConvertFilterTest, ValueWithoutKindIsInvalidArgument) {
  v1::Filter p;
  auto* c = p.add_all_of();
  c->set_field("lang");
  c->mutable_eq();  // eq set, but its oneof kind is not
  EXPECT_EQ(FilterFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertFilterTest, InValueWithoutKindIsInvalidArgument) {
  v1::Filter p;
  auto* c = p.add_all_of();
  c->set_field("lang");
  c->mutable_in()->add_values()->set_string_value("en");
  c->mutable_in()->add_values();
  EXPECT_EQ(FilterFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertFilterTest, EmptyInListIsInvalidArgument) {
  v1::Filter p;
  auto* c = p.add_all_of();
  c->set_field("lang");
  c->mutable_in();
  EXPECT_EQ(FilterFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertFilterTest, RangeWithoutBoundIsInvalidArgument) {
  v1::Filter p;
  auto* c = p.add_all_of();
  c->set_field("year");
  c->mutable_range();
  auto f = FilterFromProto(p);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("no bound"));
}

TEST(ConvertFilterTest, RangeWithGtAndGteIsInvalidArgument) {
  v1::Filter p;
  auto* c = p.add_all_of();
  c->set_field("year");
  c->mutable_range()->set_gt(1);
  c->mutable_range()->set_gte(1);
  EXPECT_EQ(FilterFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertSearchTest, OptionsCarryKFlagsAndParams) {
  v1::SearchRequest r;
  r.set_k(7);
  r.set_include_payload(true);
  r.mutable_params()->set_hnsw_ef_search(99);
  r.mutable_params()->set_ivf_nprobe(3);
  r.mutable_params()->set_refine_factor(2.5f);
  auto o = SearchOptionsFromProto(r);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->k, 7);
  EXPECT_TRUE(o->include_payload);
  EXPECT_FALSE(o->include_vectors);
  EXPECT_EQ(o->params.hnsw_ef_search, 99u);
  EXPECT_EQ(o->params.ivf_nprobe, 3u);
  EXPECT_FLOAT_EQ(o->params.refine_factor, 2.5f);
}

TEST(ConvertSearchTest, MalformedFilterFailsTheOptions) {
  v1::SearchRequest r;
  r.set_k(1);
  r.mutable_filter()->add_all_of()->set_field("x");
  EXPECT_EQ(SearchOptionsFromProto(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, EncoderNamespaceConfigRoundTrip) {
  v1::NamespaceConfig p;
  p.set_name("notes");
  p.set_encoder("use-lite");
  p.set_chunk_max_tokens(64);
  p.set_chunk_overlap_tokens(0);
  auto c = NamespaceConfigFromProto(p);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->encoder, "use-lite");
  EXPECT_EQ(c->chunk_max_tokens, 64u);
  EXPECT_EQ(c->chunk_overlap_tokens, 0u);  // set to 0, not unset
  EXPECT_TRUE(c->metric_unset);
  v1::NamespaceConfig back;
  NamespaceConfigToProto(*c, &back);
  EXPECT_EQ(back.encoder(), "use-lite");
  EXPECT_EQ(back.chunk_max_tokens(), 64u);
  ASSERT_TRUE(back.has_chunk_overlap_tokens());
  EXPECT_EQ(back.chunk_overlap_tokens(), 0u);
}

TEST(ConvertTest, UnsetOverlapStaysUnset) {
  v1::NamespaceConfig p;
  p.set_name("notes");
  p.set_encoder("use-lite");
  p.set_metric(v1::METRIC_L2);
  auto c = NamespaceConfigFromProto(p);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->chunk_overlap_tokens.has_value());
  EXPECT_FALSE(c->metric_unset);
}

TEST(ConvertTest, ChunkSourceRangeRoundTrip) {
  v1::Chunk p;
  p.set_id("d#1");
  p.set_source_begin(10);
  p.set_source_end(42);
  db::Chunk c = ChunkFromProto(p);
  EXPECT_EQ(c.source_begin, 10u);
  EXPECT_EQ(c.source_end, 42u);
  v1::Chunk back;
  ChunkToProto(c, &back);
  EXPECT_EQ(back.source_begin(), 10u);
  EXPECT_EQ(back.source_end(), 42u);
}

TEST(ConvertTest, TextSearchFieldsAreConverted) {
  v1::SearchRequest r;
  r.set_k(5);
  r.mutable_texts()->add_texts("what is a quokka");
  r.set_mode(v1::SEARCH_MODE_HYBRID_WEIGHTED);
  r.set_dense_weight(0.3f);
  r.set_bm25_weight(0.7f);
  r.set_rrf_k(10);
  r.set_highlight(true);
  auto o = SearchOptionsFromProto(r);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->text_queries, ElementsAre("what is a quokka"));
  EXPECT_EQ(o->mode, db::SearchMode::kHybridWeighted);
  EXPECT_FLOAT_EQ(o->dense_weight, 0.3f);
  EXPECT_FLOAT_EQ(o->bm25_weight, 0.7f);
  EXPECT_EQ(o->rrf_k, 10);
  EXPECT_TRUE(o->highlight);

  r.set_mode(v1::SEARCH_MODE_LATE_INTERACTION);
  r.mutable_params()->set_late_nprobe(12);
  r.mutable_params()->set_late_max_candidates(900);
  o = SearchOptionsFromProto(r);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->mode, db::SearchMode::kLateInteraction);
  EXPECT_EQ(o->late_nprobe, 12u);
  EXPECT_EQ(o->late_max_candidates, 900u);
}

TEST(ConvertTest, LateInteractionConfigRoundTrips) {
  v1::NamespaceConfig p;
  p.set_name("n");
  p.set_encoder("use-lite");
  auto unset = NamespaceConfigFromProto(p);
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->late_interaction.has_value());  // the store's default applies
  p.set_late_interaction(false);
  p.set_late_interaction_nbits(4);
  p.set_late_interaction_train_tokens(1000);
  auto c = NamespaceConfigFromProto(p);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->late_interaction, false);
  EXPECT_EQ(c->late_interaction_nbits, 4u);
  EXPECT_EQ(c->late_interaction_train_tokens, 1000u);
  v1::NamespaceConfig back;
  NamespaceConfigToProto(*c, &back);
  EXPECT_TRUE(back.has_late_interaction());
  EXPECT_FALSE(back.late_interaction());
  EXPECT_EQ(back.late_interaction_nbits(), 4u);
  EXPECT_EQ(back.late_interaction_train_tokens(), 1000u);
}

TEST(ConvertTest, SearchModesMapOneToOne) {
  EXPECT_EQ(*SearchModeFromProto(v1::SEARCH_MODE_UNSPECIFIED), db::SearchMode::kDense);
  for (db::SearchMode m : {db::SearchMode::kDense, db::SearchMode::kBm25,
                           db::SearchMode::kHybridRrf, db::SearchMode::kHybridWeighted,
                           db::SearchMode::kLateInteraction}) {
    EXPECT_EQ(*SearchModeFromProto(SearchModeToProto(m)), m);
  }
}

TEST(ConvertTest, UnknownSearchModeIsInvalidArgument) {
  v1::SearchRequest r;
  r.mutable_texts()->add_texts("q");
  r.set_mode(static_cast<v1::SearchMode>(99));
  auto o = SearchOptionsFromProto(r);
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(o.status().message(), HasSubstr("mode"));
}

TEST(ConvertTest, HitSnippetIsConverted) {
  db::Hit hit;
  hit.id = "c";
  hit.snippet = "a [[quokka]] smiles";
  v1::Hit p;
  HitToProto(hit, &p);
  EXPECT_EQ(p.snippet(), "a [[quokka]] smiles");
}

}  // namespace
}  // namespace mnemo::server
