//! Shredded attributes in DataFusion's Parquet scan: per segment, `attributes['k']` of a shredded
//! key becomes a read of its column, and `attributes` the fold of the map and those columns.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::PhysicalExpr;
use silt_storage::schema::{ATTRIBUTES, attributes_type};
use silt_storage::segment::shred::{fold_attributes, shredded_key};

/// Adapts the scan's expressions to each segment's columns: shredded attribute keys first,
/// then DataFusion's own adaptation (types, missing columns).
#[derive(Debug)]
pub struct ShreddedAttributesAdapterFactory;

impl PhysicalExprAdapterFactory for ShreddedAttributesAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let shreds: Vec<(String, Column)> = physical_file_schema
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                shredded_key(f.name()).map(|k| (k.to_owned(), Column::new(f.name(), i)))
            })
            .collect();
        let attributes = physical_file_schema
            .index_of(ATTRIBUTES)
            .ok()
            .map(|i| Column::new(ATTRIBUTES, i));
        let default =
            DefaultPhysicalExprAdapterFactory.create(logical_file_schema, physical_file_schema)?;
        Ok(Arc::new(ShreddedAttributesAdapter {
            shreds,
            attributes,
            default,
        }))
    }
}

#[derive(Debug)]
struct ShreddedAttributesAdapter {
    /// Shredded keys and their columns in the segment.
    shreds: Vec<(String, Column)>,
    /// The segment's `attributes` map (the entries not shredded).
    attributes: Option<Column>,
    default: Arc<dyn PhysicalExprAdapter>,
}

impl ShreddedAttributesAdapter {
    /// The shredded column `expr` reads, if it is `get_field(attributes, 'k')` of a shredded `k`.
    fn shredded_lookup(&self, expr: &Arc<dyn PhysicalExpr>) -> Option<Column> {
        let f = expr.downcast_ref::<ScalarFunctionExpr>()?;
        let [map, key] = f.args() else {
            return None;
        };
        if f.name() != "get_field" || map.downcast_ref::<Column>()?.name() != ATTRIBUTES {
            return None;
        }
        let key = key.downcast_ref::<Literal>()?.value().try_as_str()??;
        self.shreds
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c.clone())
    }
}

impl PhysicalExprAdapter for ShreddedAttributesAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let (false, Some(attributes)) = (self.shreds.is_empty(), &self.attributes) else {
            return self.default.rewrite(expr);
        };
        let expr = expr
            .transform_down(|e| {
                // `Jump`: the replacements' children are the segment's own columns, which must
                // not be rewritten again.
                if let Some(column) = self.shredded_lookup(&e) {
                    return Ok(Transformed::new(
                        Arc::new(column),
                        true,
                        TreeNodeRecursion::Jump,
                    ));
                }
                if e.downcast_ref::<Column>()
                    .is_some_and(|c| c.name() == ATTRIBUTES)
                {
                    let fold = FoldAttributesExpr::new(
                        Arc::new(attributes.clone()),
                        self.shreds
                            .iter()
                            .map(|(k, c)| (k.clone(), Arc::new(c.clone()) as _))
                            .collect(),
                    );
                    return Ok(Transformed::new(
                        Arc::new(fold),
                        true,
                        TreeNodeRecursion::Jump,
                    ));
                }
                Ok(Transformed::no(e))
            })
            .data()?;
        self.default.rewrite(expr)
    }
}

/// `attributes` rebuilt from a segment's map and shredded columns (see
/// [`silt_storage::segment::shred::fold_attributes`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FoldAttributesExpr {
    /// The map first, then one column per key in `keys`.
    children: Vec<Arc<dyn PhysicalExpr>>,
    keys: Vec<String>,
}

impl FoldAttributesExpr {
    pub fn new(map: Arc<dyn PhysicalExpr>, shreds: Vec<(String, Arc<dyn PhysicalExpr>)>) -> Self {
        let mut children = vec![map];
        let mut keys = Vec::with_capacity(shreds.len());
        for (key, column) in shreds {
            keys.push(key);
            children.push(column);
        }
        Self { children, keys }
    }
}

impl fmt::Display for FoldAttributesExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fold_attributes(")?;
        for (i, child) in self.children.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{child}")?;
        }
        write!(f, ")")
    }
}

impl PhysicalExpr for FoldAttributesExpr {
    fn return_field(&self, _input_schema: &Schema) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(ATTRIBUTES, attributes_type(), true)))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let arrays: Vec<ArrayRef> = self
            .children
            .iter()
            .map(|c| c.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<Result<_>>()?;
        let map = arrays[0]
            .as_any()
            .downcast_ref::<datafusion::arrow::array::MapArray>()
            .ok_or_else(|| exec_datafusion_err!("segment attributes are not a map"))?;
        let shreds: Vec<(&str, &ArrayRef)> = self
            .keys
            .iter()
            .map(String::as_str)
            .zip(&arrays[1..])
            .collect();
        Ok(ColumnarValue::Array(Arc::new(fold_attributes(
            map, &shreds,
        )?)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.children.iter().collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if children.len() != self.children.len() {
            return Err(exec_datafusion_err!(
                "fold_attributes takes {} children, got {}",
                self.children.len(),
                children.len()
            ));
        }
        Ok(Arc::new(Self {
            children,
            keys: self.keys.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ATTRIBUTES}")
    }
}
